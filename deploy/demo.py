#!/usr/bin/python3
"""deploy/demo.py — one complete sharebuy story against a running stack, as a short readable transcript.

Run it through deploy/demo (which finds the stack and the database connection); deploy/quickstart calls it last.
Everything goes through the public gRPC API (Python grpcio, message classes generated from protos/ at run time by
protoc), except the first administrator and the SERVICE credential, which sharebuyctl makes as the tests do:

  region    look up district 441900 (东莞市)
  identity  an administrator (sharebuyctl admin create, then SignIn); a member registers with a second member's
            referral code (300 CV locked) and activates with the 399.00 pack (899 CV active, VIP)
  merchant  a member applies as a merchant in that district; the administrator approves
  wallet    the owner buys the minimum deposit (BuyDeposit); the administrator confirms the payment
  identity  the owner registers a terminal, the terminal pairs with its code, the owner creates a cashier, the
            cashier signs in on the terminal; the member's app issues a QR member code
  merchant  the cashier quotes and records a 1000.00 yuan sale at 10 %: the receipt
  wallet    the member's and the merchant's balances; `sharebuyctl ledger verify`

Every run uses new data (random phone numbers, a licence number with a valid GB 32100-2015 check character, new
logins), so it can run any number of times on the same stack. Exit 0 when the story completes; 1 with the failing
step, its gRPC status, reason and message otherwise; 2 on a setup error.
"""

import argparse
import importlib
import math
import os
import random
import string
import subprocess
import sys
import tempfile
import time
import uuid

try:
    import grpc
except ImportError:
    sys.stderr.write("demo: this interpreter has no grpc module; run it with /usr/bin/python3 "
                     "(Debian's python3-grpcio)\n")
    sys.exit(2)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SERVICES = ["identity", "wallet", "merchant", "airdrop", "region"]
PASSWORD = "Demo-Horse-Battery-42"
DISTRICT = "441900"
SPEND_FEN = 100000  # 1000.00 yuan
RATE_BP = 1000  # 10 %
PACK_FEN = 39900  # the 399.00 activation pack
LICENCE_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
LICENCE_WEIGHTS = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28]


class StepFailed(Exception):
    pass


STEP = {"name": "start"}  # the step under way, named in a failure


def begin(name):
    STEP["name"] = name


def out(tag, text):
    print("  %-9s %s" % (tag, text), flush=True)


def amount(units, decimals=4):
    """Raw units (0.0001 CV/SP, or fen with decimals=2) in display form, trailing zeros dropped for CV/SP."""
    neg = units < 0
    units = abs(units)
    scale = 10 ** decimals
    s = "%d.%0*d" % (units // scale, decimals, units % scale)
    if decimals == 4:
        s = s.rstrip("0").rstrip(".")
    return ("-" if neg else "") + s


def cv(units):
    return amount(units) + " CV"


def sp(units):
    return amount(units) + " SP"


def yuan(fen):
    return amount(fen, 2) + " yuan"


def masked(phone):
    return phone[:3] + "****" + phone[7:]


def licence_number(district):
    """A unified social credit code (统一社会信用代码) of the district with a valid check character (GB 32100-2015,
    as services/merchant/merchant_util.c checks it)."""
    body = "91" + district + "".join(random.choice(LICENCE_ALPHABET) for _ in range(9))
    total = sum(LICENCE_ALPHABET.index(c) * w for c, w in zip(body, LICENCE_WEIGHTS))
    c = 31 - total % 31
    return body + LICENCE_ALPHABET[0 if c == 31 else c]


def load_modules(protos, tmp):
    files = []
    for root, _, names in os.walk(os.path.join(protos, "sharebuy")):
        files += [os.path.join(root, n) for n in names if n.endswith(".proto")]
    try:
        subprocess.run(["protoc", "--python_out=" + tmp, "--proto_path=" + protos] + sorted(files), check=True)
    except (OSError, subprocess.CalledProcessError) as e:
        sys.stderr.write("demo: protoc failed: %s\n" % e)
        sys.exit(2)
    sys.path.insert(0, tmp)
    mods = {}
    for name in ["common"] + SERVICES:
        mods[name] = importlib.import_module("sharebuy.%s.v1.%s_pb2" % (name, name))
    return mods


class Api:
    """Unary calls to the five services; a failed call raises StepFailed naming the method, the status code, the
    sharebuy-reason and the message."""

    def __init__(self, mods, host, base, deadline):
        self.mods = mods
        self.deadline = deadline
        self.channels = {}
        self.targets = {}
        for i, svc in enumerate(SERVICES):
            self.targets[svc] = "%s:%d" % (host, base + i + 1)
            self.channels[svc] = grpc.insecure_channel(self.targets[svc])
        self.by_file = {m.DESCRIPTOR.name: m for m in mods.values()}

    def call(self, svc, method, token=None, **fields):
        mod = self.mods[svc]
        sd = mod.DESCRIPTOR.services_by_name[svc.capitalize()]
        md = sd.methods_by_name[method]
        req_cls = getattr(self.by_file[md.input_type.file.name], md.input_type.name)
        resp_cls = getattr(self.by_file[md.output_type.file.name], md.output_type.name)
        rpc = self.channels[svc].unary_unary("/%s/%s" % (sd.full_name, method),
                                             request_serializer=req_cls.SerializeToString,
                                             response_deserializer=resp_cls.FromString)
        metadata = [("x-request-id", "demo-" + uuid.uuid4().hex[:12])]
        if token:
            metadata.append(("authorization", "Bearer " + token))
        try:
            return rpc(req_cls(**fields), timeout=self.deadline, metadata=metadata)
        except grpc.RpcError as e:
            reason = ""
            for k, v in (e.trailing_metadata() or ()):
                if k == "sharebuy-reason":
                    reason = " (%s)" % v
            raise StepFailed("%s/%s at %s -> %s%s: %s" % (svc.capitalize(), method, self.targets[svc],
                                                           e.code().name, reason, e.details()))

    def close(self):
        for ch in self.channels.values():
            ch.close()


def ctl(args, env=None):
    r = subprocess.run(args, capture_output=True, text=True, env=env)
    if r.returncode != 0:
        raise StepFailed("%s exited %d: %s" % (" ".join(a for a in args[1:3]), r.returncode,
                                                (r.stderr or r.stdout).strip()))
    return r.stdout.strip()


def story(api, opts):
    run = "".join(random.choice(string.ascii_lowercase + string.digits) for _ in range(8))
    pb = api.mods
    common, identity, merchant = pb["common"], pb["identity"], pb["merchant"]
    key = os.path.join(opts.stack, "keys", "signing.pem")
    def member_ref(mid):
        return common.OwnerRef(kind=common.OWNER_KIND_MEMBER, id=mid)

    def register(referral_code=""):
        for _ in range(5):
            phone = "1%d%09d" % (random.choice([3, 5, 7, 8, 9]), random.randrange(10 ** 9))
            try:
                r = api.call("identity", "RegisterMember", phone=phone, password=PASSWORD,
                             referral_code=referral_code, device_name="sharebuy demo")
                return phone, r
            except StepFailed as e:
                if "ALREADY_EXISTS" not in str(e):
                    raise
        raise StepFailed("Identity/RegisterMember: five random phone numbers were all taken")

    def balances(owner, token):
        return api.call("wallet", "GetBalances", token, owner=owner)

    print("== sharebuy demo (run %s) against %s..%s" % (run, api.targets["identity"],
                                                        api.targets["region"].rsplit(":", 1)[1]), flush=True)

    begin("look up the district")
    d = api.call("region", "GetDistrict", code=DISTRICT)
    out("region", "%s %s (%s, %s)" % (d.code, d.name, d.full_name,
                                       "has sub-divisions" if d.has_children else "a district of its own"))
    district = d
    if d.has_children:  # a merchant applies in a district (区/县): take the first one below
        kids = api.call("region", "ListChildren", parent_code=d.code)
        district = kids.districts[0]
        out("", "merchants apply in a district: %s %s" % (district.code, district.name))

    begin("the administrator")
    admin_login = "demo-admin-" + run
    env = dict(os.environ, SB_ADMIN_PASSWORD=PASSWORD)
    ctl([opts.ctl, "admin", "create", "--login", admin_login, "--name", "Demo admin " + run], env)
    admin = api.call("identity", "SignIn", login=admin_login, password=PASSWORD, role=common.ROLE_ADMIN).access_token
    service = ctl([opts.ctl, "auth", "service-token", "--private", key, "--service", "shop", "--ttl", "10m"])
    out("admin", "%s created by sharebuyctl admin create, signed in as ADMIN; a SERVICE token for the shop "
                 "(sharebuyctl auth service-token)" % admin_login)

    begin("register the members")
    ref_phone, ref = register()
    out("member", "%s registered (the referrer), referral code %s" % (masked(ref_phone), ref.member.referral_code))
    phone, reg = register(ref.member.referral_code)
    mtok = reg.tokens.access_token
    mid = reg.member.member_id
    b = balances(member_ref(mid), mtok)
    out("member", "%s registered with code %s: +%s locked (wallet: %s locked, %s active)" % (
        masked(phone), ref.member.referral_code, cv(reg.bonus_cv_locked_units), cv(b.cv_locked_units),
        cv(b.cv_active_units)))

    begin("activate the member")
    act = api.call("identity", "Activate", service, payment_reference="demo-%s-pack" % run, member_id=mid,
                   pack_price_fen=PACK_FEN)
    b = balances(member_ref(mid), mtok)
    out("activate", "%s pack: %s unlocked + %s = %s active, VIP %s (wallet: %s locked, %s active)" % (
        yuan(act.pack.price_fen), cv(act.cv_unlocked_units), cv(act.cv_credited_units),
        cv(act.cv_active_after_units), "yes" if act.vip else "no", cv(b.cv_locked_units), cv(b.cv_active_units)))
    if act.cv_active_after_units != 8990000:
        raise StepFailed("the 399.00 pack after registering should leave 899 CV active (economics.md worked "
                         "example 7), not %s" % cv(act.cv_active_after_units))

    begin("a merchant applies and is approved")
    owner_phone, owner = register()
    licence = licence_number(district.code)
    prof = api.call("merchant", "Apply", owner.tokens.access_token, name="好邻居便利店 " + run.upper()[:4],
                    licence_no=licence, address="东城街道 幸福路 %d 号" % random.randint(1, 999),
                    location=common.GeoPoint(latitude_e6=23020536 + random.randint(-20000, 20000),
                                             longitude_e6=113751765 + random.randint(-20000, 20000)),
                    district_code=district.code, contact_name="张店长", contact_phone=owner_phone,
                    concession_rate_bp=RATE_BP)
    merchant_id = prof.merchant_id
    out("merchant", "#%d %s applied in %s %s (licence %s, %s concession) by %s" % (
        merchant_id, prof.name, district.code, district.name, licence, "%g %%" % (prof.concession_rate_bp / 100),
        masked(owner_phone)))
    prof = api.call("merchant", "Approve", admin, merchant_id=merchant_id, note="sharebuy demo")
    out("", "approved by the admin: %s" % merchant.MerchantStatus.Name(prof.status)[len("MERCHANT_STATUS_"):])
    otok = api.call("identity", "SignIn", login=owner_phone, password=PASSWORD, role=common.ROLE_MERCHANT_OWNER,
                    merchant_id=merchant_id).access_token

    begin("buy the minimum deposit")
    ds = api.call("merchant", "GetDepositStatus", otok)
    need = ds.sp_to_minimum_units
    supply = api.call("wallet", "GetSupply")
    if supply.treasury_sp_units < need:
        # A deployment configured without a treasury (wallet.treasury_sp_units = 0, quickstart's default) has no SP
        # to sell: the platform sets some aside from the unreleased SP first, as tests/pos does.
        stock = need - supply.treasury_sp_units
        sys_acct = lambda a: common.AccountRef(system=a)
        ref_key = "demo-%s-stock" % run
        api.call("wallet", "PostTransaction", service, idempotency_key=ref_key,
                 cause=common.Cause(kind=common.CAUSE_KIND_ADJUSTMENT, reference=ref_key),
                 legs=[common.LedgerLeg(account=sys_acct(common.SYSTEM_ACCOUNT_SP_UNRELEASED), amount_units=-stock,
                                        reason=common.LEG_REASON_ADJUSTMENT),
                       common.LedgerLeg(account=sys_acct(common.SYSTEM_ACCOUNT_SP_TREASURY), amount_units=stock,
                                        reason=common.LEG_REASON_ADJUSTMENT)],
                 memo="sharebuy demo: stock the treasury for a deposit")
        out("treasury", "held %s: %s moved from the unreleased SP into it (an adjustment)" % (
            sp(supply.treasury_sp_units), sp(stock)))
    buy = api.call("wallet", "BuyDeposit", otok, idempotency_key="demo-%s-deposit" % run, sp_units=need)
    p = buy.purchase
    conf = api.call("wallet", "ConfirmPayment", admin, purchase_id=p.purchase_id,
                    payment_reference="demo-%s-pay" % run, paid_fen=p.amount_fen)
    out("deposit", "order #%d: %s at %s/SP = %s (the minimum is %s); payment confirmed by the admin: deposit %s" % (
        p.purchase_id, sp(p.sp_units), yuan(p.price_micro_yuan // 10000), yuan(p.amount_fen),
        yuan(buy.deposit_min_fen), sp(conf.purchase.deposit_after_sp_units)))

    begin("the till")
    rt = api.call("identity", "RegisterTerminal", otok, label="收银台 1")
    pair = api.call("identity", "PairTerminal", pairing_code=rt.pairing_code, device_name="demo-till-" + run)
    ttok = pair.tokens.access_token
    out("terminal", "#%d %s registered by the owner, paired with its one-time code (%s)" % (
        rt.terminal.terminal_id, rt.terminal.label, identity.TerminalStatus.Name(pair.terminal.status)[len("TERMINAL_STATUS_"):]))
    cashier_login = "cashier-" + run
    api.call("identity", "CreateStaff", otok, role=common.ROLE_CASHIER, login=cashier_login, display_name="王小明",
             initial_password=PASSWORD)
    cs = api.call("identity", "CashierSignIn", ttok, login=cashier_login, password=PASSWORD)
    ctok = cs.access_token
    if cs.must_change_password:
        ctok = api.call("identity", "ChangePassword", ctok, old_password=PASSWORD,
                        new_password=PASSWORD + "!").tokens.access_token
    out("cashier", "%s (王小明) created by the owner, signed in on terminal #%d as %s" % (
        cashier_login, cs.principal.terminal_id, common.Role.Name(cs.principal.role)[len("ROLE_"):]))

    begin("the member's QR code")
    code = api.call("identity", "IssueMemberCode", mtok, text_only=True)
    out("code", "the member's app shows a QR code (%d characters, valid %d s, single use)" % (
        len(code.code), math.ceil((code.expires_unix_ms - time.time() * 1000) / 1000)))

    begin("quote and record the sale")
    before_m = balances(member_ref(mid), admin)
    q = api.call("merchant", "QuoteSale", ctok, member_code=code.code, spend_fen=SPEND_FEN)
    s = q.split
    out("quote", "%s for %s (VIP %s) at %g %%: member +%s, merchant +%s, deposit -%s" % (
        yuan(s.spend_fen), q.member.masked_phone, "yes" if q.member.vip else "no", s.concession_rate_bp / 100,
        cv(s.member_cv_units), cv(s.merchant_cv_units), sp(s.deposit_sp_units)))
    sale_id = str(uuid.uuid4())
    rec = api.call("merchant", "RecordSale", ctok, sale_id=sale_id, member_code=code.code, spend_fen=SPEND_FEN)
    r, s = rec.receipt, rec.split
    out("sale", "recorded: sale %s, wallet transaction #%d" % (r.sale_id, r.transaction_id))
    print("  ┌─ receipt ─────────────────────────────────────────", flush=True)
    # The till prints its own label and the cashier's name (the merchant service knows neither).
    rows = [
        ("store", "%s (#%d), %s, cashier %s" % (r.merchant_name, r.merchant_id, r.terminal_label or rt.terminal.label,
                                                r.cashier_name or "王小明")),
        ("day", "%s" % r.business_day),
        ("member", "%s%s" % (r.member.masked_phone, " VIP" if r.member.vip else "")),
        ("spend", "%s at %g %% concession" % (yuan(r.spend_fen), r.concession_rate_bp / 100)),
        ("CV", "member +%s%s, merchant +%s" % (cv(r.member_cv_units), " (locked)" if r.member_cv_locked else "",
                                               cv(r.merchant_cv_units))),
        ("deposit", "-%s at %s/SP" % (sp(r.deposit_sp_units), yuan(r.guide_price_micro_yuan // 10000))),
        ("shares", "referrer %s%s, centre %s%s, burned %s" % (
            sp(s.referrer_sp_units), "" if s.referrer_sp_units else " (not VIP)", sp(s.centre_sp_units),
            "" if s.centre_id else " (no centre in the district)", sp(s.burned_sp_units))),
        ("left", "%s in the deposit (%s)" % (sp(r.deposit_left_sp_units),
                                             merchant.DepositLevel.Name(r.deposit_level)[len("DEPOSIT_LEVEL_"):])),
    ]
    for k, v in rows:
        print("  │ %-9s %s" % (k, v), flush=True)
    print("  └───────────────────────────────────────────────────", flush=True)

    begin("the balances")
    after_m = balances(member_ref(mid), admin)
    after_x = balances(common.OwnerRef(kind=common.OWNER_KIND_MERCHANT, id=merchant_id), admin)
    out("wallet", "member %s: %s active (+%s), %s locked, %s" % (
        masked(phone), cv(after_m.cv_active_units), cv(after_m.cv_active_units - before_m.cv_active_units),
        cv(after_m.cv_locked_units), sp(after_m.sp_units)))
    out("wallet", "merchant #%d: %s active, deposit %s (worth %s)" % (
        merchant_id, cv(after_x.cv_active_units + after_x.cv_locked_units), sp(after_x.sp_units),
        yuan(after_x.sp_value_fen)))
    if after_m.cv_active_units - before_m.cv_active_units != r.member_cv_units or \
            after_x.sp_units != r.deposit_left_sp_units:
        raise StepFailed("the wallet's balances do not match the receipt")

    begin("verify the ledger")
    v = ctl([opts.ctl, "ledger", "verify"])
    for i, line in enumerate(v.splitlines()):
        out("ledger" if i == 0 else "", ("sharebuyctl ledger verify: " if i == 0 else "") + line)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port-base", type=int, default=int(os.environ.get("SB_QS_PORT_BASE", "50050")),
                    help="gRPC ports are base+1 (identity) .. base+5 (region); default $SB_QS_PORT_BASE or 50050")
    ap.add_argument("--stack", default=os.path.join(REPO, "var", "quickstart"),
                    help="the stack folder (its keys/signing.pem mints the SERVICE token)")
    ap.add_argument("--ctl", default=os.path.join(REPO, "build", "services", "ctl", "sharebuyctl"))
    ap.add_argument("--protos", default=os.path.join(REPO, "protos"))
    ap.add_argument("--deadline", type=float, default=15.0, help="seconds per call (default 15)")
    opts = ap.parse_args()
    for path in (opts.ctl, os.path.join(opts.stack, "keys", "signing.pem")):
        if not os.path.exists(path):
            sys.stderr.write("demo: %s is missing; start the stack with deploy/quickstart first\n" % path)
            return 2
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="sb-demo-") as tmp:
        mods = load_modules(opts.protos, tmp)
        api = Api(mods, opts.host, opts.port_base, opts.deadline)
        try:
            story(api, opts)
        except StepFailed as e:
            print("demo FAILED at step '%s': %s" % (STEP["name"], e), flush=True)
            return 1
        finally:
            api.close()
    print("== demo passed in %.1f s" % (time.monotonic() - t0), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
