/* PosApplication: see pos-application.h. */
#include "pos-application.h"

#include <glib/gi18n.h>
#include <locale.h>

#include "pos-resources.h"
#include "pos-window.h"

struct _PosApplication {
        AdwApplication parent_instance;
        char *state_dir;
        pos_terminal *terminal;
};

G_DEFINE_FINAL_TYPE(PosApplication, pos_application, ADW_TYPE_APPLICATION)

void pos_application_init_i18n(void) {
        setlocale(LC_ALL, "");
        const char *messages = setlocale(LC_MESSAGES, NULL);
        gboolean c_locale = !messages || g_str_equal(messages, "C") || g_str_equal(messages, "POSIX") ||
                            g_str_has_prefix(messages, "C.");
        if (!g_getenv("LANGUAGE") && c_locale) {
                /* A till in China: Chinese unless told otherwise. gettext ignores LANGUAGE under the plain C
                 * locale, so the messages category moves to C.UTF-8, which it honours. */
                g_setenv("LANGUAGE", "zh_CN", TRUE);
                setlocale(LC_MESSAGES, "C.UTF-8");
        }
        const char *dir = g_getenv("SB_POS_LOCALEDIR");
        bindtextdomain(POS_GETTEXT_PACKAGE, dir && *dir ? dir : POS_LOCALEDIR);
        bind_textdomain_codeset(POS_GETTEXT_PACKAGE, "UTF-8");
        textdomain(POS_GETTEXT_PACKAGE);
}

pos_terminal *pos_application_get_terminal(PosApplication *self) {
        g_return_val_if_fail(POS_IS_APPLICATION(self), NULL);
        return self->terminal;
}

static void pos_application_startup(GApplication *app) {
        PosApplication *self = POS_APPLICATION(app);
        G_APPLICATION_CLASS(pos_application_parent_class)->startup(app);
        g_autoptr(GtkCssProvider) css = gtk_css_provider_new();
        gtk_css_provider_load_from_resource(css, "/cn/sharebuy/Pos/style.css");
        gtk_style_context_add_provider_for_display(gdk_display_get_default(), GTK_STYLE_PROVIDER(css),
                                                   GTK_STYLE_PROVIDER_PRIORITY_APPLICATION);
        if (!self->state_dir) {
                const char *env = g_getenv("SB_POS_STATE_DIR");
                self->state_dir = env && *env ? g_strdup(env) : g_build_filename(g_get_user_data_dir(), "sharebuy-pos", NULL);
        }
        g_mkdir_with_parents(self->state_dir, 0700);
        char err[512] = "";
        if (pos_terminal_new(self->state_dir, &self->terminal, err, sizeof err) < 0)
                g_critical("%s", err);
}

static void pos_application_activate(GApplication *app) {
        PosApplication *self = POS_APPLICATION(app);
        GtkWindow *w = gtk_application_get_active_window(GTK_APPLICATION(app));
        if (!w) {
                if (!self->terminal) {
                        /* The folder could not be opened: nothing can be sold safely without the journal. */
                        g_application_quit(app);
                        return;
                }
                w = GTK_WINDOW(pos_window_new(GTK_APPLICATION(app), self->terminal));
        }
        gtk_window_present(w);
}

static int pos_application_handle_local_options(GApplication *app, GVariantDict *options) {
        PosApplication *self = POS_APPLICATION(app);
        const char *dir = NULL;
        if (g_variant_dict_lookup(options, "state-dir", "&s", &dir))
                self->state_dir = g_strdup(dir);
        return -1;
}

static void pos_application_finalize(GObject *object) {
        PosApplication *self = POS_APPLICATION(object);
        pos_terminal_free(self->terminal);
        g_free(self->state_dir);
        G_OBJECT_CLASS(pos_application_parent_class)->finalize(object);
}

static void pos_application_class_init(PosApplicationClass *klass) {
        GObjectClass *object_class = G_OBJECT_CLASS(klass);
        GApplicationClass *app_class = G_APPLICATION_CLASS(klass);
        object_class->finalize = pos_application_finalize;
        app_class->startup = pos_application_startup;
        app_class->activate = pos_application_activate;
        app_class->handle_local_options = pos_application_handle_local_options;
}

static void pos_application_init(PosApplication *self) {
        g_application_add_main_option(G_APPLICATION(self), "state-dir", 0, 0, G_OPTION_ARG_STRING,
                                      _("Folder of the till's state and offline journal"), _("DIR"));
}

PosApplication *pos_application_new(void) {
        /* The templates live in the resource bundle of this static library; register it before any widget. */
        static gsize registered;
        if (g_once_init_enter(&registered)) {
                pos_register_resource();
                g_once_init_leave(&registered, 1);
        }
        return g_object_new(POS_TYPE_APPLICATION, "application-id", "cn.sharebuy.Pos", "flags",
                            G_APPLICATION_NON_UNIQUE, NULL);
}
