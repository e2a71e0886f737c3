/* The till's real window under Xvfb, driven as a cashier would: first start (server address, pairing code),
 * cashier sign-in, a member code typed into the scan field by the X server's keyboard as a scanner does (xdotool;
 * keys + Enter), the amount on the keyboard, the quote, confirm, the receipt, void (F9); then the offline case:
 * the server goes away, a sale is saved offline, the server comes back and the sale arrives exactly once. Saves a
 * screenshot of each screen in SB_POS_SCREENSHOT_DIR.
 *
 * The services here are a small in-process stand-in speaking the real v1 protocol on loopback (identity's
 * PairTerminal / Refresh / CashierSignIn and merchant's sale RPCs, RecordSale idempotent on the sale id), so the
 * window can be tested while the merchant service's sale RPCs are being built; tests/pos/test-pos-e2e.c runs the
 * same path against the real services. */
#include <adwaita.h>
#include <glib/gstdio.h>
#include <pthread.h>
#include <string.h>

#include "pos-application.h"
#include "pos-receipt.h"
#include "pos-window.h"
#include "rpc.h"

/* --- the stand-in server --- */

typedef struct fake_sale {
        char sale_id[65];
        int64_t spend_fen;
        int records; /* RecordSale calls that named it */
        bool voided;
} fake_sale;

static pthread_mutex_t fake_lock = PTHREAD_MUTEX_INITIALIZER;
static fake_sale fake_sales[64];
static size_t fake_n_sales;

static Sharebuy__Identity__V1__TokenPair *fake_tokens(sb_call *call, const char *kind) {
        Sharebuy__Identity__V1__TokenPair *tp = sb_call_alloc(call, sizeof *tp);
        sharebuy__identity__v1__token_pair__init(tp);
        tp->access_token = sb_call_printf(call, "%s-access", kind);
        tp->access_expires_unix_ms = g_get_real_time() / 1000 + 900000;
        tp->refresh_token = sb_call_printf(call, "%s-refresh", kind);
        Sharebuy__Identity__V1__Principal *p = sb_call_alloc(call, sizeof *p);
        sharebuy__identity__v1__principal__init(p);
        p->display_name = (char *) (strcmp(kind, "cashier") == 0 ? "王小明" : "");
        tp->principal = p;
        return tp;
}

static sb_status fake_pair(sb_call *call, const ProtobufCMessage *rq, ProtobufCMessage *rs) {
        const Sharebuy__Identity__V1__PairTerminalRequest *req = (const void *) rq;
        Sharebuy__Identity__V1__PairTerminalResponse *resp = (void *) rs;
        if (strcmp(req->pairing_code, "12345678") != 0)
                return sb_call_fail_reason(call, SB_UNAUTHENTICATED, "REASON_PAIRING_CODE_INVALID", "wrong code");
        Sharebuy__Identity__V1__Terminal *t = sb_call_alloc(call, sizeof *t);
        sharebuy__identity__v1__terminal__init(t);
        t->terminal_id = 7;
        t->merchant_id = 3;
        t->label = (char *) "收银台 1";
        resp->terminal = t;
        resp->tokens = fake_tokens(call, "terminal");
        resp->merchant_name = (char *) "好邻居便利店";
        return SB_OK;
}

static sb_status fake_refresh(sb_call *call, const ProtobufCMessage *rq, ProtobufCMessage *rs) {
        const Sharebuy__Identity__V1__RefreshRequest *req = (const void *) rq;
        const char *kind = g_str_has_prefix(req->refresh_token, "cashier") ? "cashier" : "terminal";
        Sharebuy__Identity__V1__TokenPair *tp = fake_tokens(call, kind);
        memcpy(rs, tp, sizeof *tp);
        return SB_OK;
}

static sb_status fake_sign_in(sb_call *call, const ProtobufCMessage *rq, ProtobufCMessage *rs) {
        const Sharebuy__Identity__V1__CashierSignInRequest *req = (const void *) rq;
        const char *b = sb_call_bearer(call);
        if (!b || strcmp(b, "terminal-access") != 0)
                return sb_call_fail_reason(call, SB_UNAUTHENTICATED, "REASON_TOKEN_INVALID", "not a terminal");
        if (strcmp(req->login, "cashier1") != 0 || strcmp(req->password, "123456") != 0)
                return sb_call_fail_reason(call, SB_UNAUTHENTICATED, "REASON_BAD_CREDENTIALS", "wrong login or password");
        Sharebuy__Identity__V1__TokenPair *tp = fake_tokens(call, "cashier");
        memcpy(rs, tp, sizeof *tp);
        return SB_OK;
}

static sb_status check_cashier(sb_call *call) {
        const char *b = sb_call_bearer(call);
        if (!b || strcmp(b, "cashier-access") != 0)
                return sb_call_fail_reason(call, SB_UNAUTHENTICATED, "REASON_TOKEN_INVALID", "not a cashier");
        return SB_OK;
}

static Sharebuy__Common__V1__MemberBrief *fake_member(sb_call *call) {
        Sharebuy__Common__V1__MemberBrief *m = sb_call_alloc(call, sizeof *m);
        sharebuy__common__v1__member_brief__init(m);
        m->member_id = 42;
        m->masked_phone = (char *) "138****5678";
        m->vip = true;
        return m;
}

static sb_status fake_quote(sb_call *call, const ProtobufCMessage *rq, ProtobufCMessage *rs) {
        const Sharebuy__Merchant__V1__QuoteSaleRequest *req = (const void *) rq;
        Sharebuy__Merchant__V1__SaleQuote *q = (void *) rs;
        if (check_cashier(call) != SB_OK)
                return SB_UNAUTHENTICATED;
        if (g_str_has_prefix(req->member_code, "EXPIRED"))
                return sb_call_fail_reason(call, SB_FAILED_PRECONDITION, "REASON_MEMBER_CODE_EXPIRED", "code expired");
        Sharebuy__Merchant__V1__SaleSplit *s = sb_call_alloc(call, sizeof *s);
        sharebuy__merchant__v1__sale_split__init(s);
        s->spend_fen = req->spend_fen;
        s->concession_rate_bp = 1000;
        s->member_cv_units = req->spend_fen * 100;  /* 1 CV per yuan */
        s->deposit_sp_units = req->spend_fen * 5;   /* 10% at 2.00 yuan/SP */
        q->member = fake_member(call);
        q->split = s;
        q->business_day = (char *) "2025-01-01";
        q->deposit_sp_units = 5000000;
        q->deposit_after_sp_units = 5000000 - s->deposit_sp_units;
        q->deposit_sufficient = true;
        return SB_OK;
}

static Sharebuy__Merchant__V1__SaleReceipt *fake_receipt(sb_call *call, const fake_sale *fs) {
        Sharebuy__Merchant__V1__SaleReceipt *r = sb_call_alloc(call, sizeof *r);
        sharebuy__merchant__v1__sale_receipt__init(r);
        r->sale_id = sb_call_strdup(call, fs->sale_id);
        r->merchant_name = (char *) "好邻居便利店";
        r->terminal_label = (char *) "收银台 1";
        r->cashier_name = (char *) "王小明";
        r->recorded_unix_ms = g_get_real_time() / 1000;
        r->business_day = (char *) "2025-01-01";
        r->member = fake_member(call);
        r->spend_fen = fs->spend_fen;
        r->member_cv_units = fs->spend_fen * 100;
        r->deposit_sp_units = fs->spend_fen * 5;
        r->deposit_left_sp_units = 400000;
        r->deposit_level = SHAREBUY__MERCHANT__V1__DEPOSIT_LEVEL__DEPOSIT_LEVEL_LOW;
        return r;
}

static sb_status fake_record(sb_call *call, const ProtobufCMessage *rq, ProtobufCMessage *rs) {
        const Sharebuy__Merchant__V1__RecordSaleRequest *req = (const void *) rq;
        Sharebuy__Merchant__V1__RecordSaleResponse *resp = (void *) rs;
        if (check_cashier(call) != SB_OK)
                return SB_UNAUTHENTICATED;
        pthread_mutex_lock(&fake_lock);
        fake_sale *fs = NULL;
        for (size_t i = 0; i < fake_n_sales; i++)
                if (strcmp(fake_sales[i].sale_id, req->sale_id) == 0)
                        fs = &fake_sales[i];
        if (!fs && fake_n_sales < G_N_ELEMENTS(fake_sales)) {
                fs = &fake_sales[fake_n_sales++];
                g_strlcpy(fs->sale_id, req->sale_id, sizeof fs->sale_id);
                fs->spend_fen = req->spend_fen;
        } else if (fs) {
                resp->replayed = true;
        }
        fs->records++;
        resp->receipt = fake_receipt(call, fs);
        pthread_mutex_unlock(&fake_lock);
        return SB_OK;
}

static sb_status fake_void(sb_call *call, const ProtobufCMessage *rq, ProtobufCMessage *rs) {
        const Sharebuy__Merchant__V1__VoidSaleRequest *req = (const void *) rq;
        Sharebuy__Merchant__V1__VoidSaleResponse *resp = (void *) rs;
        if (check_cashier(call) != SB_OK)
                return SB_UNAUTHENTICATED;
        pthread_mutex_lock(&fake_lock);
        fake_sale *fs = NULL;
        for (size_t i = 0; i < fake_n_sales; i++)
                if (strcmp(fake_sales[i].sale_id, req->sale_id) == 0)
                        fs = &fake_sales[i];
        sb_status st = SB_OK;
        if (!fs) {
                st = sb_call_fail_reason(call, SB_NOT_FOUND, "REASON_SALE_UNKNOWN", "no such sale");
        } else {
                fs->voided = true;
                Sharebuy__Merchant__V1__Sale *s = sb_call_alloc(call, sizeof *s);
                sharebuy__merchant__v1__sale__init(s);
                s->receipt = fake_receipt(call, fs);
                s->voided = true;
                resp->sale = s;
                resp->deposit_left_sp_units = 5000000;
        }
        pthread_mutex_unlock(&fake_lock);
        return st;
}

static sb_status fake_deposit(sb_call *call, const ProtobufCMessage *rq, ProtobufCMessage *rs) {
        Sharebuy__Merchant__V1__DepositStatus *d = (void *) rs;
        if (check_cashier(call) != SB_OK)
                return SB_UNAUTHENTICATED;
        d->deposit_sp_units = 400000;
        d->level = SHAREBUY__MERCHANT__V1__DEPOSIT_LEVEL__DEPOSIT_LEVEL_LOW;
        d->can_record_sales = true;
        return SB_OK;
}

static sb_status fake_list(sb_call *call, const ProtobufCMessage *rq, ProtobufCMessage *rs) {
        Sharebuy__Merchant__V1__ListSalesResponse *resp = (void *) rs;
        if (check_cashier(call) != SB_OK)
                return SB_UNAUTHENTICATED;
        pthread_mutex_lock(&fake_lock);
        resp->sales = sb_call_alloc(call, sizeof *resp->sales * (fake_n_sales + 1));
        for (size_t i = fake_n_sales; i > 0; i--) {
                Sharebuy__Merchant__V1__Sale *s = sb_call_alloc(call, sizeof *s);
                sharebuy__merchant__v1__sale__init(s);
                s->receipt = fake_receipt(call, &fake_sales[i - 1]);
                s->voided = fake_sales[i - 1].voided;
                resp->sales[resp->n_sales++] = s;
        }
        pthread_mutex_unlock(&fake_lock);
        return SB_OK;
}

static sb_status fake_summary(sb_call *call, const ProtobufCMessage *rq, ProtobufCMessage *rs) {
        Sharebuy__Merchant__V1__DaySummaryResponse *z = (void *) rs;
        if (check_cashier(call) != SB_OK)
                return SB_UNAUTHENTICATED;
        Sharebuy__Merchant__V1__SalesTotals *t = sb_call_alloc(call, sizeof *t);
        sharebuy__merchant__v1__sales_totals__init(t);
        pthread_mutex_lock(&fake_lock);
        for (size_t i = 0; i < fake_n_sales; i++) {
                t->sale_count++;
                t->gross_spend_fen += fake_sales[i].spend_fen;
                if (fake_sales[i].voided) {
                        t->void_count++;
                        t->void_spend_fen += fake_sales[i].spend_fen;
                } else {
                        t->net_spend_fen += fake_sales[i].spend_fen;
                        t->net_member_cv_units += fake_sales[i].spend_fen * 100;
                        t->net_deposit_sp_units += fake_sales[i].spend_fen * 5;
                }
        }
        pthread_mutex_unlock(&fake_lock);
        z->business_day = (char *) "2025-01-01";
        z->total = t;
        z->deposit_sp_units = 400000;
        z->generated_unix_ms = g_get_real_time() / 1000;
        return SB_OK;
}

static sb_rpc_server *fake_start(int port) {
        static const sb_rpc_method id_methods[] = {
                { "PairTerminal", fake_pair }, { "Refresh", fake_refresh }, { "CashierSignIn", fake_sign_in },
        };
        static const sb_rpc_method m_methods[] = {
                { "QuoteSale", fake_quote },         { "RecordSale", fake_record }, { "VoidSale", fake_void },
                { "GetDepositStatus", fake_deposit }, { "ListSales", fake_list },    { "DaySummary", fake_summary },
        };
        char bind[64], err[256];
        snprintf(bind, sizeof bind, "127.0.0.1:%d", port);
        sb_rpc_server_config cfg = { .bind = bind, .workers = 2, .grace_ms = 200 };
        sb_rpc_server *srv = NULL;
        g_assert_cmpint(sb_rpc_server_new(&cfg, &srv, err, sizeof err), ==, 0);
        g_assert_cmpint(sb_rpc_server_add_service(srv, &sharebuy__identity__v1__identity__descriptor, id_methods,
                                                  G_N_ELEMENTS(id_methods), NULL), ==, 0);
        g_assert_cmpint(sb_rpc_server_add_service(srv, &sharebuy__merchant__v1__merchant__descriptor, m_methods,
                                                  G_N_ELEMENTS(m_methods), NULL), ==, 0);
        /* After a stop the port may take a moment to be free again. */
        for (int i = 0; i < 50; i++) {
                if (sb_rpc_server_start(srv, err, sizeof err) == 0)
                        return srv;
                g_usleep(100000);
        }
        g_error("stand-in server: %s", err);
}

/* --- driving the window --- */

static const char *shot_dir;

static void pump(int ms) {
        gint64 end = g_get_monotonic_time() + ms * 1000;
        while (g_get_monotonic_time() < end) {
                while (g_main_context_iteration(NULL, FALSE))
                        ;
                g_usleep(2000);
        }
}

#define WAIT_FOR(cond, ms)                                                                              \
        do {                                                                                            \
                gint64 end_ = g_get_monotonic_time() + (ms) * 1000;                                     \
                while (!(cond)) {                                                                       \
                        if (g_get_monotonic_time() > end_)                                              \
                                g_error("%s:%d: timed out waiting for %s", __FILE__, __LINE__, #cond);  \
                        pump(5);                                                                        \
                }                                                                                       \
        } while (0)

static GtkWidget *find_named(GtkWidget *w, const char *name) {
        if (g_strcmp0(gtk_widget_get_name(w), name) == 0)
                return w;
        for (GtkWidget *c = gtk_widget_get_first_child(w); c; c = gtk_widget_get_next_sibling(c)) {
                GtkWidget *f = find_named(c, name);
                if (f)
                        return f;
        }
        return NULL;
}

static GtkWidget *widget(PosWindow *win, const char *name) {
        GtkWidget *w = find_named(GTK_WIDGET(win), name);
        if (!w)
                g_error("no widget named %s", name);
        return w;
}

static const char *label_text(PosWindow *win, const char *name) {
        return gtk_label_get_text(GTK_LABEL(widget(win, name)));
}

static const char *stack_page(PosWindow *win, const char *name) {
        const char *p = gtk_stack_get_visible_child_name(GTK_STACK(widget(win, name)));
        return p ? p : "";
}

static void screenshot(const char *file) {
        pump(400); /* let the crossfade end and the frame be drawn */
        g_autofree char *path = g_build_filename(shot_dir, file, NULL);
        g_autofree char *cmd = g_strdup_printf("import -window root %s", path);
        int status = 0;
        g_autoptr(GError) error = NULL;
        if (!g_spawn_command_line_sync(cmd, NULL, NULL, &status, &error) || status != 0)
                g_printerr("screenshot %s failed\n", path);
        else
                g_print("screenshot: %s\n", path);
}

static gboolean have_xdotool;

/* Type as a keyboard or a USB scanner does: real key events from the X server to the focused window. */
static void xtype(const char *args) {
        g_autofree char *cmd = g_strdup_printf("xdotool %s", args);
        int status = 0;
        /* The X server queues the key events; the main loop takes them once xdotool is done. */
        g_assert_true(g_spawn_command_line_sync(cmd, NULL, NULL, &status, NULL));
        g_assert_cmpint(status, ==, 0);
        pump(150);
}

/* The scanner: the code's characters and Enter into the focused scan field. */
static void scan(PosWindow *win, const char *code) {
        GtkWidget *entry = widget(win, "scan-entry");
        /* The scan field always has the focus on the sale screen: that is where a scanner types. */
        GtkWidget *focus = gtk_root_get_focus(GTK_ROOT(win));
        g_assert_true(focus && (focus == entry || gtk_widget_is_ancestor(focus, entry)));
        if (have_xdotool) {
                g_autofree char *a = g_strdup_printf("type --delay 4 %s", code);
                xtype(a);
                xtype("key Return");
        } else {
                gtk_editable_set_text(GTK_EDITABLE(entry), code);
                g_signal_emit_by_name(entry, "activate");
        }
}

static void type_amount(PosWindow *win, const char *amount) {
        if (have_xdotool) {
                g_autofree char *a = g_strdup_printf("type --delay 10 %s", amount);
                xtype(a);
                xtype("key Return");
        } else {
                for (const char *p = amount; *p; p++) {
                        g_autofree char *name = g_strdup_printf("key-%c", *p);
                        gtk_widget_activate(widget(win, name));
                }
                GtkWidget *entry = widget(win, "scan-entry");
                g_signal_emit_by_name(entry, "activate");
        }
}

static void key(const char *k) {
        g_autofree char *a = g_strdup_printf("key %s", k);
        xtype(a);
}

static AdwMessageDialog *find_void_dialog(void) {
        GListModel *tops = gtk_window_get_toplevels();
        for (guint i = 0; i < g_list_model_get_n_items(tops); i++) {
                g_autoptr(GObject) o = g_list_model_get_item(tops, i);
                if (ADW_IS_MESSAGE_DIALOG(o) && gtk_widget_get_visible(GTK_WIDGET(o)))
                        return ADW_MESSAGE_DIALOG(o);
        }
        return NULL;
}

static size_t journal_queued(PosApplication *app) {
        pos_journal_sale *s = NULL;
        size_t n = 0, q = 0;
        g_assert_cmpint(pos_terminal_journal_sales(pos_application_get_terminal(app), &s, &n), ==, 0);
        for (size_t i = 0; i < n; i++)
                q += s[i].status == POS_SALE_QUEUED;
        free(s);
        return q;
}

static int fake_count(void) {
        pthread_mutex_lock(&fake_lock);
        int n = (int) fake_n_sales;
        pthread_mutex_unlock(&fake_lock);
        return n;
}

int main(int argc, char **argv) {
        if (!g_getenv("DISPLAY")) {
                g_print("SKIP: no X display (run under xvfb-run)\n");
                return 77;
        }
        shot_dir = g_getenv("SB_POS_SCREENSHOT_DIR") ? g_getenv("SB_POS_SCREENSHOT_DIR") : g_get_tmp_dir();
        g_mkdir_with_parents(shot_dir, 0755);
        have_xdotool = g_find_program_in_path("xdotool") != NULL;
        if (!have_xdotool)
                g_print("note: xdotool missing, typing by inserting text instead of key events\n");

        sb_rpc_init();
        sb_rpc_server *srv = fake_start(0);
        int port = sb_rpc_server_port(srv);
        g_autofree char *dir = g_dir_make_tmp("test-pos-ui-XXXXXX", NULL);
        g_setenv("SB_POS_STATE_DIR", dir, TRUE);

        pos_application_init_i18n();
        g_autoptr(PosApplication) app = pos_application_new();
        g_assert_true(g_application_register(G_APPLICATION(app), NULL, NULL));
        g_application_activate(G_APPLICATION(app));
        PosWindow *win = NULL;
        WAIT_FOR((win = POS_WINDOW(gtk_application_get_active_window(GTK_APPLICATION(app)))) != NULL, 5000);
        WAIT_FOR(gtk_widget_get_mapped(GTK_WIDGET(win)), 5000);

        /* First start: the setup page. A wrong code is refused in plain words at the code field. */
        g_assert_cmpstr(pos_window_get_page(win), ==, "setup");
        g_autofree char *addr = g_strdup_printf("127.0.0.1:%d", port);
        gtk_editable_set_text(GTK_EDITABLE(widget(win, "server-entry")), addr);
        gtk_editable_set_text(GTK_EDITABLE(widget(win, "pairing-entry")), "11112222");
        gtk_widget_activate(widget(win, "pair-button"));
        WAIT_FOR(gtk_widget_get_visible(widget(win, "setup-error")), 5000);
        g_print("pairing refused: %s\n", label_text(win, "setup-error"));
        gtk_editable_set_text(GTK_EDITABLE(widget(win, "pairing-entry")), "12345678");
        screenshot("pos-setup.png");
        gtk_widget_activate(widget(win, "pair-button"));
        WAIT_FOR(g_str_equal(pos_window_get_page(win), "sign-in"), 5000);

        /* Cashier sign-in: a wrong password first. */
        gtk_editable_set_text(GTK_EDITABLE(widget(win, "login-entry")), "cashier1");
        gtk_editable_set_text(GTK_EDITABLE(widget(win, "password-entry")), "000000");
        gtk_widget_activate(widget(win, "sign-in-button"));
        WAIT_FOR(gtk_widget_get_visible(widget(win, "sign-in-error")), 5000);
        gtk_editable_set_text(GTK_EDITABLE(widget(win, "password-entry")), "123456");
        screenshot("pos-sign-in.png");
        gtk_widget_activate(widget(win, "sign-in-button"));
        WAIT_FOR(g_str_equal(pos_window_get_page(win), "sale"), 5000);
        WAIT_FOR(gtk_revealer_get_reveal_child(GTK_REVEALER(widget(win, "deposit-banner"))), 5000);

        /* An expired member code is refused at the scan field. */
        pump(300);
        scan(win, "EXPIRED.code");
        type_amount(win, "12");
        WAIT_FOR(gtk_widget_has_css_class(widget(win, "scan-status"), "error"), 5000);
        g_print("expired code: %s\n", label_text(win, "scan-status"));
        key("Escape");

        /* The sale: scan, amount, quote, confirm, receipt. */
        scan(win, "SBM1.member-code-42");
        type_amount(win, "88.00");
        WAIT_FOR(g_str_equal(stack_page(win, "sale-stack"), "quote"), 5000);
        g_assert_cmpstr(label_text(win, "quote-member"), ==, "138****5678");
        g_assert_cmpstr(gtk_editable_get_text(GTK_EDITABLE(widget(win, "spend-entry"))), ==, "88.00");
        screenshot("pos-quote.png");
        key("Return");
        WAIT_FOR(g_str_equal(stack_page(win, "sale-stack"), "receipt"), 5000);
        g_assert_cmpint(fake_count(), ==, 1);
        g_assert_nonnull(strstr(label_text(win, "receipt-text"), fake_sales[0].sale_id));
        screenshot("pos-receipt.png");

        /* Void it (F9, then the dialog's "Void"). */
        key("F9");
        AdwMessageDialog *d = NULL;
        WAIT_FOR((d = find_void_dialog()) != NULL, 5000);
        screenshot("pos-void-confirm.png");
        adw_message_dialog_response(d, "void");
        WAIT_FOR(fake_sales[0].voided && g_str_equal(stack_page(win, "sale-stack"), "receipt"), 5000);
        pump(300);
        screenshot("pos-voided.png");
        key("Return");

        /* Offline: the server goes away; the sale is kept, then arrives once when it comes back. */
        sb_rpc_server_free(srv);
        srv = NULL;
        scan(win, "SBM1.member-code-43");
        type_amount(win, "25.50");
        WAIT_FOR(g_str_equal(stack_page(win, "sale-stack"), "offline"), 15000);
        screenshot("pos-offline.png");
        key("Return");
        WAIT_FOR(g_str_equal(stack_page(win, "sale-stack"), "receipt"), 20000);
        g_assert_cmpint(journal_queued(app), ==, 1);
        pump(500);
        screenshot("pos-queued.png");
        srv = fake_start(port);
        WAIT_FOR(journal_queued(app) == 0, 30000);
        g_assert_cmpint(fake_count(), ==, 2);
        g_assert_cmpint(fake_sales[1].records, ==, 1);
        g_assert_cmpint(fake_sales[1].spend_fen, ==, 2550);

        /* Today's sales and the Z report. */
        key("F2");
        WAIT_FOR(g_str_equal(pos_window_get_page(win), "day"), 5000);
        WAIT_FOR(strstr(label_text(win, "z-report"), "25.50") != NULL, 5000);
        screenshot("pos-day.png");

        /* The receipt as PDF, with the same drawing as the print dialog. */
        g_autoptr(PosReceipt) r = pos_receipt_new("好邻居便利店");
        pos_receipt_add(r, "Amount", "¥88.00");
        r->qr_text = g_strdup("SBM1.card");
        g_autofree char *pdf = g_build_filename(dir, "receipt.pdf", NULL);
        g_assert_true(pos_receipt_save_pdf(r, pdf, NULL));
        g_autofree char *head = NULL;
        g_assert_true(g_file_get_contents(pdf, &head, NULL, NULL));
        g_assert_true(g_str_has_prefix(head, "%PDF"));

        gtk_window_destroy(GTK_WINDOW(win));
        pump(200);
        sb_rpc_server_free(srv);
        g_print("ok\n");
        return 0;
}
