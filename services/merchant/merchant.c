/* The merchant service (sharebuy.merchant.v1.Merchant): its definition, settings and the helpers its handlers share
 * (calls to identity, wallet and region; the settings and centre caches). See docs/merchant.md. */
#include "merchant_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"

merchant_state *merchant_st(sb_call *call) {
        return sb_call_service_data(call);
}

int64_t merchant_now_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void merchant_today(sb_call *call, char out[MERCHANT_DAY_LEN + 1]) {
        merchant_state *st = merchant_st(call);
        /* The offset and cut-off were validated at start-up and the clock is inside 1970..3000. */
        int r = merchant_business_day(merchant_now_ms(), st->utc_offset_min, st->cutoff_min, out);
        (void) r;
}

sb_db *merchant_db(sb_call *call, sb_status *ret_status) {
        sb_db *db = sb_service_db(call);
        if (!db) {
                *ret_status = sb_service_db_unavailable(call);
                return NULL;
        }
        /* Rounded up to whole seconds: changing the limit costs a round trip. */
        int64_t left = sb_call_remaining_ms(call);
        uint32_t limit_ms = left > 600000 ? 0 : (uint32_t) ((left + 999) / 1000 * 1000);
        sb_db_set_statement_timeout_ms(db, left <= 0 ? 1 : limit_ms);
        return db;
}

sb_status merchant_peer(sb_call *call, const char *peer, const ProtobufCServiceDescriptor *desc, const char *method,
                        const void *req, const ProtobufCMessageDescriptor *resp_desc, void **resp, char *msg,
                        size_t msg_n, char *reason) {
        char path[128];
        if (reason)
                reason[0] = '\0';
        if (sb_rpc_method_path(desc, method, path, sizeof path) < 0) {
                snprintf(msg, msg_n, "no method %s", method);
                return SB_INTERNAL;
        }
        sb_rpc_client *c = sb_service_peer(peer);
        if (!c) {
                snprintf(msg, msg_n, "no peer named %s is configured", peer);
                return SB_UNAVAILABLE;
        }
        int64_t deadline = MERCHANT_PEER_DEADLINE_MS, left = sb_call_remaining_ms(call);
        if (left < deadline)
                deadline = left;
        if (deadline <= 0) {
                snprintf(msg, msg_n, "the call's deadline passed before %s could be asked", peer);
                return SB_DEADLINE_EXCEEDED;
        }
        char rbuf[SB_RPC_REASON_MAX] = "";
        sb_rpc_call_opts o = {.deadline_ms = deadline,
                              .bearer = sb_service_token(),
                              .request_id = sb_call_request_id(call),
                              .ret_reason = rbuf};
        ProtobufCMessage *r = NULL;
        sb_status s = sb_rpc_client_call(c, path, req, resp_desc, &o, &r, msg, msg_n);
        if (reason)
                snprintf(reason, SB_RPC_REASON_MAX, "%s", rbuf);
        if (s == SB_OK) {
                if (resp)
                        *resp = r;
                else
                        protobuf_c_message_free_unpacked(r, NULL);
        }
        return s;
}

void merchant_free(void *msg) {
        if (msg)
                protobuf_c_message_free_unpacked(msg, NULL);
}

sb_status merchant_peer_fail(sb_call *call, const char *peer, const char *what, sb_status st, const char *msg) {
        if (st == SB_UNAVAILABLE || st == SB_DEADLINE_EXCEEDED)
                return sb_call_fail_reason(call, st, "REASON_DEPENDENCY_UNAVAILABLE", "%s did not answer %s: %s; retry",
                                           peer, what, msg);
        if (st == SB_UNIMPLEMENTED)
                return sb_call_fail_reason(call, SB_UNAVAILABLE, "REASON_DEPENDENCY_UNAVAILABLE",
                                           "%s cannot answer %s yet (not implemented by the running version)", peer,
                                           what);
        sb_log_kv(SB_LOG_ERROR, "peer", "unexpected answer from a peer", "peer", SB_LOG_STR(peer), "what",
                  SB_LOG_STR(what), "status", SB_LOG_STR(sb_status_name((int) st)), "message", SB_LOG_STR(msg),
                  "request_id", SB_LOG_STR(sb_call_request_id(call)), NULL);
        return sb_call_fail(call, SB_INTERNAL, "%s refused %s (%s); request id %s", peer, what,
                            sb_status_name((int) st), sb_call_request_id(call));
}

/* --- Settings: region.GetRegionSettings, cached per (district, business day) --- */

static void settings_from_proto(const Sharebuy__Region__V1__EconomySettings *e, merchant_settings *out) {
        sb_econ_settings s = sb_econ_settings_default();
        s.register_bonus_cv = e->register_bonus_cv_units;
        s.referral_bonus_cv = e->referral_bonus_cv_units;
        s.member_cv_multiplier = e->member_cv_multiplier;
        s.merchant_cv_multiplier = e->merchant_cv_multiplier;
        s.concession_min_bp = e->concession_min_bp;
        s.concession_max_bp = e->concession_max_bp;
        s.concession_default_bp = e->concession_default_bp;
        s.deposit_min_fen = e->deposit_min_fen;
        s.referral_sp_share_bp = e->referral_sp_share_bp;
        s.merchant_referral_sp_share_bp = e->merchant_referral_sp_share_bp;
        s.centre_sp_share_bp = e->centre_sp_share_bp;
        s.parent_centre_sp_share_bp = e->parent_centre_sp_share_bp;
        s.referral_cv_share_bp = e->referral_cv_share_bp;
        s.referral2_sp_share_bp = e->referral_l2_sp_share_bp;
        s.referral2_cv_share_bp = e->referral_l2_cv_share_bp;
        if (s.referral2_sp_share_bp > 0 || s.referral2_cv_share_bp > 0)
                s.referral_levels = 2;
        out->econ = s;
        out->deposit_warning_fen = e->deposit_warning_fen;
        out->sale_max_spend_fen = e->sale_max_spend_fen;
        out->offline_grace_ms = (int64_t) e->offline_sale_grace_seconds * 1000;
}

bool merchant_settings_get(sb_call *call, const char *district, const char *day, merchant_settings *ret,
                           sb_status *ret_status) {
        merchant_state *st = merchant_st(call);
        pthread_mutex_lock(&st->mu);
        for (size_t i = 0; i < st->n_settings; i++)
                if (!strcmp(st->settings[i].district, district) && !strcmp(st->settings[i].day, day)) {
                        *ret = st->settings[i].s;
                        pthread_mutex_unlock(&st->mu);
                        return true;
                }
        pthread_mutex_unlock(&st->mu);

        Sharebuy__Region__V1__GetRegionSettingsRequest req = SHAREBUY__REGION__V1__GET_REGION_SETTINGS_REQUEST__INIT;
        req.region_code = (char *) district;
        req.business_day = (char *) day;
        Sharebuy__Region__V1__RegionSettings *rs = NULL;
        char msg[SB_RPC_MESSAGE_MAX];
        sb_status s = merchant_peer(call, "region", &sharebuy__region__v1__region__descriptor, "GetRegionSettings",
                                    &req, &sharebuy__region__v1__region_settings__descriptor, (void **) &rs, msg,
                                    sizeof msg, NULL);
        if (s != SB_OK) {
                *ret_status = merchant_peer_fail(call, "region", "the district's settings", s, msg);
                return false;
        }
        if (!rs->effective) {
                merchant_free(rs);
                *ret_status = merchant_peer_fail(call, "region", "the district's settings", SB_INTERNAL,
                                                 "no effective settings in the answer");
                return false;
        }
        merchant_settings m;
        settings_from_proto(rs->effective, &m);
        merchant_free(rs);

        pthread_mutex_lock(&st->mu);
        merchant_settings_slot *slot;
        if (st->n_settings < MERCHANT_SETTINGS_CACHE)
                slot = &st->settings[st->n_settings++];
        else {
                slot = &st->settings[st->next_settings];
                st->next_settings = (st->next_settings + 1) % MERCHANT_SETTINGS_CACHE;
        }
        snprintf(slot->district, sizeof slot->district, "%s", district);
        snprintf(slot->day, sizeof slot->day, "%s", day);
        slot->s = m;
        pthread_mutex_unlock(&st->mu);
        *ret = m;
        return true;
}

bool merchant_open_accounts(sb_call *call, int kind, uint64_t id, sb_status *ret_status) {
        Sharebuy__Common__V1__OwnerRef o = SHAREBUY__COMMON__V1__OWNER_REF__INIT;
        o.kind = (Sharebuy__Common__V1__OwnerKind) kind;
        o.id = id;
        Sharebuy__Wallet__V1__OpenAccountsRequest oa = SHAREBUY__WALLET__V1__OPEN_ACCOUNTS_REQUEST__INIT;
        oa.owner = &o;
        char msg[SB_RPC_MESSAGE_MAX];
        sb_status s = merchant_peer(call, "wallet", &sharebuy__wallet__v1__wallet__descriptor, "OpenAccounts", &oa,
                                    &sharebuy__wallet__v1__open_accounts_response__descriptor, NULL, msg, sizeof msg,
                                    NULL);
        if (s != SB_OK) {
                *ret_status = merchant_peer_fail(call, "wallet", "opening ledger accounts", s, msg);
                return false;
        }
        return true;
}

/* --- Centres: region.CentresForDistrict, cached; dropped when region.GetCentreRevision changes --- */

static bool centre_revision_check(sb_call *call, merchant_state *st, sb_status *ret_status) {
        int64_t now = merchant_now_ms();
        pthread_mutex_lock(&st->mu);
        bool due = now - st->centre_checked_ms >= st->centre_poll_ms;
        pthread_mutex_unlock(&st->mu);
        if (!due)
                return true;
        Sharebuy__Region__V1__GetCentreRevisionRequest req = SHAREBUY__REGION__V1__GET_CENTRE_REVISION_REQUEST__INIT;
        Sharebuy__Region__V1__GetCentreRevisionResponse *r = NULL;
        char msg[SB_RPC_MESSAGE_MAX];
        sb_status s = merchant_peer(call, "region", &sharebuy__region__v1__region__descriptor, "GetCentreRevision",
                                    &req, &sharebuy__region__v1__get_centre_revision_response__descriptor,
                                    (void **) &r, msg, sizeof msg, NULL);
        if (s != SB_OK) {
                *ret_status = merchant_peer_fail(call, "region", "the centre revision", s, msg);
                return false;
        }
        pthread_mutex_lock(&st->mu);
        if (r->revision != st->centre_revision) {
                st->n_centres = 0;
                st->next_centre = 0;
                st->centre_revision = r->revision;
        }
        st->centre_checked_ms = now;
        pthread_mutex_unlock(&st->mu);
        merchant_free(r);
        return true;
}

bool merchant_centres_get(sb_call *call, const char *district, uint64_t *ret_centre, uint64_t *ret_parent,
                          sb_status *ret_status) {
        merchant_state *st = merchant_st(call);
        if (!centre_revision_check(call, st, ret_status))
                return false;
        pthread_mutex_lock(&st->mu);
        for (size_t i = 0; i < st->n_centres; i++)
                if (!strcmp(st->centres[i].district, district)) {
                        *ret_centre = st->centres[i].centre_id;
                        *ret_parent = st->centres[i].parent_id;
                        pthread_mutex_unlock(&st->mu);
                        return true;
                }
        pthread_mutex_unlock(&st->mu);

        Sharebuy__Region__V1__CentresForDistrictRequest req = SHAREBUY__REGION__V1__CENTRES_FOR_DISTRICT_REQUEST__INIT;
        req.district_code = (char *) district;
        Sharebuy__Region__V1__CentresForDistrictResponse *r = NULL;
        char msg[SB_RPC_MESSAGE_MAX];
        sb_status s = merchant_peer(call, "region", &sharebuy__region__v1__region__descriptor, "CentresForDistrict",
                                    &req, &sharebuy__region__v1__centres_for_district_response__descriptor,
                                    (void **) &r, msg, sizeof msg, NULL);
        if (s != SB_OK) {
                *ret_status = merchant_peer_fail(call, "region", "the centres of the merchant's district", s, msg);
                return false;
        }
        uint64_t c = r->centre ? r->centre->centre_id : 0;
        uint64_t p = r->centre && r->parent ? r->parent->centre_id : 0;
        uint64_t rev = r->revision;
        merchant_free(r);
        /* The centres' ledger accounts must exist before a sale credits them; opening is idempotent and happens
         * once per cache fill, so region need not have done it. */
        if ((c && !merchant_open_accounts(call, SHAREBUY__COMMON__V1__OWNER_KIND__OWNER_KIND_CENTRE, c, ret_status)) ||
            (p && !merchant_open_accounts(call, SHAREBUY__COMMON__V1__OWNER_KIND__OWNER_KIND_CENTRE, p, ret_status)))
                return false;
        pthread_mutex_lock(&st->mu);
        /* An answer of an older revision than the one known is not cached (a change happened meanwhile). */
        if (rev >= st->centre_revision) {
                merchant_centre_slot *slot;
                if (st->n_centres < MERCHANT_CENTRE_CACHE)
                        slot = &st->centres[st->n_centres++];
                else {
                        slot = &st->centres[st->next_centre];
                        st->next_centre = (st->next_centre + 1) % MERCHANT_CENTRE_CACHE;
                }
                snprintf(slot->district, sizeof slot->district, "%s", district);
                slot->centre_id = c;
                slot->parent_id = p;
        }
        pthread_mutex_unlock(&st->mu);
        *ret_centre = c;
        *ret_parent = p;
        return true;
}

int32_t merchant_rate_on(const merchant_row *m, const char *day) {
        if (m->pending_rate_bp > 0 && m->pending_rate_day[0] && strcmp(day, m->pending_rate_day) >= 0)
                return m->pending_rate_bp;
        return m->rate_bp;
}

/* --- The deposit --- */

bool merchant_deposit_get(sb_call *call, uint64_t merchant_id, merchant_deposit *ret, sb_status *ret_status) {
        Sharebuy__Common__V1__OwnerRef o = SHAREBUY__COMMON__V1__OWNER_REF__INIT;
        o.kind = SHAREBUY__COMMON__V1__OWNER_KIND__OWNER_KIND_MERCHANT;
        o.id = merchant_id;
        Sharebuy__Wallet__V1__GetBalancesRequest req = SHAREBUY__WALLET__V1__GET_BALANCES_REQUEST__INIT;
        req.owner = &o;
        Sharebuy__Wallet__V1__GetBalancesResponse *r = NULL;
        char msg[SB_RPC_MESSAGE_MAX];
        sb_status s = merchant_peer(call, "wallet", &sharebuy__wallet__v1__wallet__descriptor, "GetBalances", &req,
                                    &sharebuy__wallet__v1__get_balances_response__descriptor, (void **) &r, msg,
                                    sizeof msg, NULL);
        if (s == SB_NOT_FOUND) {
                *ret_status = sb_call_fail_reason(call, SB_FAILED_PRECONDITION, "REASON_MERCHANT_NOT_APPROVED",
                                                  "merchant %" PRIu64 " has no ledger accounts yet", merchant_id);
                return false;
        }
        if (s != SB_OK) {
                *ret_status = merchant_peer_fail(call, "wallet", "the merchant's deposit", s, msg);
                return false;
        }
        ret->sp_units = r->sp_units;
        ret->price_micro = r->guide_price_micro_yuan;
        snprintf(ret->day, sizeof ret->day, "%s", r->business_day ? r->business_day : "");
        merchant_free(r);
        if (ret->price_micro <= 0) {
                *ret_status = merchant_peer_fail(call, "wallet", "the guide price", SB_INTERNAL, "price <= 0");
                return false;
        }
        merchant_state *st = merchant_st(call);
        pthread_mutex_lock(&st->mu);
        merchant_deposit_slot *slot = &st->deposits[merchant_id % MERCHANT_DEPOSIT_CACHE];
        slot->merchant_id = merchant_id;
        slot->sp_units = ret->sp_units;
        slot->price_micro = ret->price_micro;
        snprintf(slot->day, sizeof slot->day, "%s", ret->day);
        slot->fetched_ms = merchant_now_ms();
        pthread_mutex_unlock(&st->mu);
        return true;
}

bool merchant_deposit_cached(sb_call *call, uint64_t merchant_id, merchant_deposit *ret, bool *ret_cached,
                             sb_status *ret_status) {
        merchant_state *st = merchant_st(call);
        char today[MERCHANT_DAY_LEN + 1];
        merchant_today(call, today);
        int64_t now = merchant_now_ms();
        pthread_mutex_lock(&st->mu);
        const merchant_deposit_slot *slot = &st->deposits[merchant_id % MERCHANT_DEPOSIT_CACHE];
        bool hit = st->deposit_cache_ms > 0 && slot->merchant_id == merchant_id && !strcmp(slot->day, today) &&
                   now - slot->fetched_ms < st->deposit_cache_ms;
        if (hit) {
                ret->sp_units = slot->sp_units;
                ret->price_micro = slot->price_micro;
                snprintf(ret->day, sizeof ret->day, "%s", slot->day);
        }
        pthread_mutex_unlock(&st->mu);
        *ret_cached = hit;
        return hit || merchant_deposit_get(call, merchant_id, ret, ret_status);
}

void merchant_deposit_note(sb_call *call, uint64_t merchant_id, int64_t sp_units) {
        merchant_state *st = merchant_st(call);
        pthread_mutex_lock(&st->mu);
        merchant_deposit_slot *slot = &st->deposits[merchant_id % MERCHANT_DEPOSIT_CACHE];
        if (slot->merchant_id == merchant_id && sp_units >= 0 && sp_units < slot->sp_units)
                slot->sp_units = sp_units;
        pthread_mutex_unlock(&st->mu);
}

int64_t merchant_sp_value_fen(int64_t sp_units, int64_t price_micro) {
        int64_t v = 0;
        if (sb_muldiv_i64(sp_units, price_micro, SB_SP_SCALE * SB_MICRO_PER_FEN, SB_ROUND_DOWN, &v) < 0)
                return INT64_MAX;
        return v;
}

int merchant_deposit_level(const merchant_settings *s, int64_t sp_units, int64_t price_micro) {
        int64_t v = merchant_sp_value_fen(sp_units, price_micro);
        if (v < s->econ.deposit_min_fen)
                return SHAREBUY__MERCHANT__V1__DEPOSIT_LEVEL__DEPOSIT_LEVEL_BELOW_MINIMUM;
        if (v < s->deposit_warning_fen)
                return SHAREBUY__MERCHANT__V1__DEPOSIT_LEVEL__DEPOSIT_LEVEL_LOW;
        return SHAREBUY__MERCHANT__V1__DEPOSIT_LEVEL__DEPOSIT_LEVEL_OK;
}

/* --- The service --- */

static const sb_rpc_method merchant_methods[] = {
        {"Apply", merchant_h_apply},
        {"Approve", merchant_h_approve},
        {"Reject", merchant_h_reject},
        {"Suspend", merchant_h_suspend},
        {"Resume", merchant_h_resume},
        {"SetConcessionRate", merchant_h_set_rate},
        {"UpdateMerchant", merchant_h_update},
        {"GetMerchant", merchant_h_get},
        {"ListMerchants", merchant_h_list},
        {"GetDepositStatus", merchant_h_deposit_status},
        {"QuoteSale", merchant_h_quote},
        {"RecordSale", merchant_h_record},
        {"VoidSale", merchant_h_void},
        {"GetSale", merchant_h_get_sale},
        {"ListSales", merchant_h_list_sales},
        {"DaySummary", merchant_h_day_summary},
        {"NearbyStores", merchant_h_nearby},
};

static const sb_config_key merchant_keys[] = {
        {"merchant.utc_offset_min", SB_CONFIG_INT, "480", -840, 840, true, false,
         "the deployment's time zone, minutes east of UTC (Asia/Shanghai: 480); must equal the wallet's"},
        {"merchant.cutoff_min", SB_CONFIG_INT, "1320", 0, 1439, true, false,
         "the daily airdrop cut-off that ends a business day, minutes after local midnight; must equal the wallet's"},
        {"merchant.centre_poll", SB_CONFIG_DURATION_MS, "1s", 0, 3600000, true, false,
         "how often the sale path asks region for the centre revision (drops cached centres when it changed)"},
        {"merchant.deposit_cache", SB_CONFIG_DURATION_MS, "5s", 0, 60000, true, false,
         "how long the sale path trusts the last deposit and price seen for a merchant (0: ask the wallet every sale)"},
        {"merchant.nearby_per_minute", SB_CONFIG_INT, "120", 1, 1000000, true, false,
         "NearbyStores calls allowed per peer address and minute (no token is needed for it)"},
        {"merchant.group_commit", SB_CONFIG_BOOL, "true", 0, 0, true, false,
         "write the pending rows, and the updates to recorded, of sales that arrive together with one statement "
         "(docs/merchant.md)"},
        {"merchant.group_leaders", SB_CONFIG_INT, "4", 1, SB_BATCH_LEADERS_MAX, true, false,
         "with group_commit: how many groups of sale rows may be written at once (docs/merchant.md)"},
        {"merchant.mark_behind", SB_CONFIG_BOOL, "true", 0, 0, true, false,
         "answer a sale once it is posted and write its update to recorded behind the answer (docs/merchant.md)"},
        {"merchant.pending_sweep_age", SB_CONFIG_DURATION_MS, "10s", 0, 3600000, true, false,
         "pending sales older than this are looked up in the wallet and recorded when posted (docs/merchant.md)"},
        {"merchant.test_delay_after_post", SB_CONFIG_DURATION_MS, "0", 0, 600000, true, false,
         "TESTS ONLY: a pause between posting a sale's wallet transaction and storing the sale (crash tests)"},
        {"merchant.test_delay_before_mark", SB_CONFIG_DURATION_MS, "0", 0, 600000, true, false,
         "TESTS ONLY: a pause before the updates to recorded written behind are written (crash tests)"},
};

static int merchant_init(const sb_config *cfg, void **ret_state, char *err, size_t err_n) {
        if (sodium_init() < 0) {
                snprintf(err, err_n, "libsodium failed to initialise");
                return -EIO;
        }
        merchant_state *st = calloc(1, sizeof *st);
        if (!st) {
                snprintf(err, err_n, "out of memory");
                return -ENOMEM;
        }
        st->utc_offset_min = (int) sb_config_int(cfg, "merchant.utc_offset_min");
        st->cutoff_min = (int) sb_config_int(cfg, "merchant.cutoff_min");
        st->centre_poll_ms = sb_config_int(cfg, "merchant.centre_poll");
        st->deposit_cache_ms = sb_config_int(cfg, "merchant.deposit_cache");
        st->nearby_per_minute = sb_config_int(cfg, "merchant.nearby_per_minute");
        st->test_delay_after_post_ms = sb_config_int(cfg, "merchant.test_delay_after_post");
        st->marks_on = sb_config_bool(cfg, "merchant.mark_behind");
        st->sweep_age_ms = sb_config_int(cfg, "merchant.pending_sweep_age");
        st->sweep_every_ms = st->sweep_age_ms < 1000 ? 1000 : st->sweep_age_ms > 5000 ? 5000 : st->sweep_age_ms;
        st->test_delay_before_mark_ms = sb_config_int(cfg, "merchant.test_delay_before_mark");
        st->centre_checked_ms = INT64_MIN / 2;
        pthread_mutex_init(&st->mu, NULL);
        if (merchant_sale_groups_init(st, sb_config_bool(cfg, "merchant.group_commit"),
                                      (unsigned) sb_config_int(cfg, "merchant.group_leaders")) < 0) {
                pthread_mutex_destroy(&st->mu);
                free(st);
                snprintf(err, err_n, "out of memory");
                return -ENOMEM;
        }
        sb_metrics_registry *reg = sb_service_metrics();
        if (reg) {
                if (sb_metrics_plain(reg, "sharebuy_merchant_sale_groups_total",
                                     "group statements that wrote the rows of several sales at once",
                                     SB_METRICS_COUNTER, &st->m_groups) < 0 ||
                    sb_metrics_plain(reg, "sharebuy_merchant_sale_grouped_total",
                                     "sale rows (pending, or updates to recorded) written by a group statement",
                                     SB_METRICS_COUNTER, &st->m_grouped) < 0)
                        st->m_groups = st->m_grouped = NULL;
                if (sb_metrics_plain(reg, "sharebuy_merchant_sales_swept_total",
                                     "pending sales found posted by the sweep and recorded",
                                     SB_METRICS_COUNTER, &st->m_swept) < 0)
                        st->m_swept = NULL;
        }
        int r = merchant_marks_start(st);
        if (r < 0) {
                merchant_marks_stop(st);
                merchant_sale_groups_fini(st);
                pthread_mutex_destroy(&st->mu);
                free(st);
                snprintf(err, err_n, "cannot start the thread that records sales: %s", strerror(-r));
                return r;
        }
        *ret_state = st;
        return 0;
}

static void merchant_fini(void *state) {
        merchant_state *st = state;
        if (!st)
                return;
        merchant_marks_stop(st); /* writes what is queued, with the group statements */
        merchant_sale_groups_fini(st);
        pthread_mutex_destroy(&st->mu);
        free(st);
}

const sb_service_def merchant_service = {
        .name = "merchant",
        .desc = &sharebuy__merchant__v1__merchant__descriptor,
        .methods = merchant_methods,
        .n_methods = sizeof merchant_methods / sizeof merchant_methods[0],
        .default_port = 50053,
        .default_metrics_port = 9153,
        .extra_keys = merchant_keys,
        .n_extra_keys = sizeof merchant_keys / sizeof merchant_keys[0],
        .init = merchant_init,
        .fini = merchant_fini,
};
