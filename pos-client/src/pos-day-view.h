/* PosDayView: today's sales at this till (from ListSales, plus the sales still waiting in the offline journal and
 * those it refused), each voidable the same day, and the Z report of the day (DaySummary) with print / PDF. */
#pragma once

#include <gtk/gtk.h>

#include "pos-terminal.h"

G_BEGIN_DECLS

#define POS_TYPE_DAY_VIEW (pos_day_view_get_type())
G_DECLARE_FINAL_TYPE(PosDayView, pos_day_view, POS, DAY_VIEW, GtkWidget)

PosDayView *pos_day_view_new(pos_terminal *terminal);

/* Load the list and the Z report again. */
void pos_day_view_refresh(PosDayView *self);

G_END_DECLS
