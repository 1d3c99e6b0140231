/* A PKCS#11 module for tests that forwards every call to SoftHSM2 and
 * misbehaves on purpose, as a control file says: injected CK_RVs (at a rate
 * or on the Nth call), latency, a session cap, sessions dropped under the
 * caller, a stand-in token (another SoftHSM2 configuration, taken at the next
 * C_Initialize), hidden mechanisms and a CloudHSM-like profile. Never used
 * outside tests; README.md beside it documents the control file. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <p11-kit/pkcs11.h>

#define SHIM_RULES_MAX 32
#define SHIM_HIDDEN_MAX 32
#define SHIM_SESSIONS_MAX 4096
#define SHIM_MECHS_MAX 1024
#define SHIM_PATH_MAX 1024
#define DEFAULT_MODULE "/usr/lib/softhsm/libsofthsm2.so"
/* CloudHSM Client SDK 5 vendor names (cloudhsm_pkcs11_vendor_defs.h) */
#define VENDOR_AES_KEY_WRAP_ZERO_PAD (CKM_VENDOR_DEFINED | 0x216FUL)
#define M_AES_KEY_WRAP 0x2109UL
#define M_AES_KEY_WRAP_PAD 0x210AUL
#define M_AES_KEY_WRAP_KWP 0x210BUL

enum rule_kind { RULE_FAIL, RULE_LATENCY };

struct rule {
    enum rule_kind kind;
    char func[48]; /* "*" or a C_ name */
    CK_RV rv;
    double rate;             /* 0..1; 1 when no nth */
    unsigned long nth;       /* fail only the nth matching call (1-based); 0: by rate */
    unsigned long ms;        /* latency */
    unsigned long seen;      /* matching calls since the control file was read */
};

struct session {
    CK_SESSION_HANDLE h;
    unsigned long epoch; /* drop count when opened */
    int used;
};

static struct {
    pthread_mutex_t mu;
    void *dl;
    CK_FUNCTION_LIST_PTR real;
    char control[SHIM_PATH_MAX];
    struct timespec mtime;
    ino_t ino;
    off_t size;
    int have_control;

    struct rule rules[SHIM_RULES_MAX];
    size_t rule_count;
    CK_MECHANISM_TYPE hidden[SHIM_HIDDEN_MAX];
    size_t hidden_count;
    unsigned long max_sessions; /* 0: no cap */
    int cloudhsm;
    char conf[SHIM_PATH_MAX];        /* SOFTHSM2_CONF to take at the next C_Initialize */
    char orig_conf[SHIM_PATH_MAX];   /* the environment's, when no "conf" line says otherwise */
    char loaded_conf[SHIM_PATH_MAX]; /* the one the module runs on */
    unsigned long drop, dropped_epoch;

    struct session sessions[SHIM_SESSIONS_MAX];
    unsigned long open_sessions;
    unsigned long long rng;
} S = {.mu = PTHREAD_MUTEX_INITIALIZER};

static const struct {
    const char *name;
    CK_RV rv;
} rv_names[] = {
    {"CKR_OK", CKR_OK},
    {"CKR_DEVICE_ERROR", CKR_DEVICE_ERROR},
    {"CKR_DEVICE_REMOVED", CKR_DEVICE_REMOVED},
    {"CKR_SESSION_HANDLE_INVALID", CKR_SESSION_HANDLE_INVALID},
    {"CKR_SESSION_CLOSED", CKR_SESSION_CLOSED},
    {"CKR_TOKEN_NOT_PRESENT", CKR_TOKEN_NOT_PRESENT},
    {"CKR_PIN_INCORRECT", CKR_PIN_INCORRECT},
    {"CKR_PIN_LOCKED", CKR_PIN_LOCKED},
    {"CKR_GENERAL_ERROR", CKR_GENERAL_ERROR},
    {"CKR_FUNCTION_FAILED", CKR_FUNCTION_FAILED},
    {"CKR_HOST_MEMORY", CKR_HOST_MEMORY},
    {"CKR_USER_NOT_LOGGED_IN", CKR_USER_NOT_LOGGED_IN},
    {"CKR_SESSION_COUNT", CKR_SESSION_COUNT},
};

static const struct {
    const char *name;
    CK_MECHANISM_TYPE m;
} mech_names[] = {
    {"CKM_AES_KEY_GEN", CKM_AES_KEY_GEN},
    {"CKM_AES_GCM", CKM_AES_GCM},
    {"CKM_AES_KEY_WRAP", M_AES_KEY_WRAP},
    {"CKM_AES_KEY_WRAP_PAD", M_AES_KEY_WRAP_PAD},
    {"CKM_AES_KEY_WRAP_KWP", M_AES_KEY_WRAP_KWP},
    {"CKM_GENERIC_SECRET_KEY_GEN", CKM_GENERIC_SECRET_KEY_GEN},
    {"CKM_SHA256_HMAC", CKM_SHA256_HMAC},
    {"CKM_EC_KEY_PAIR_GEN", CKM_EC_KEY_PAIR_GEN},
    {"CKM_ECDSA", CKM_ECDSA},
};

static int parse_rv(const char *s, CK_RV *out)
{
    for (size_t i = 0; i < sizeof(rv_names) / sizeof(rv_names[0]); i++)
        if (strcmp(s, rv_names[i].name) == 0) {
            *out = rv_names[i].rv;
            return 0;
        }
    char *end;
    unsigned long v = strtoul(s, &end, 0);
    if (end == s || *end) return -1;
    *out = v;
    return 0;
}

static int parse_mech(const char *s, CK_MECHANISM_TYPE *out)
{
    for (size_t i = 0; i < sizeof(mech_names) / sizeof(mech_names[0]); i++)
        if (strcmp(s, mech_names[i].name) == 0) {
            *out = mech_names[i].m;
            return 0;
        }
    char *end;
    unsigned long v = strtoul(s, &end, 0);
    if (end == s || *end) return -1;
    *out = v;
    return 0;
}

static void complain(const char *line)
{
    fprintf(stderr, "p11shim: control line not understood: %s\n", line);
}

/* One line: "fail RV [func=NAME] [rate=R] [nth=N]", "latency MS [func=NAME]",
 * "max_sessions N", "hide MECH", "profile cloudhsm|none", "conf PATH",
 * "drop N"; '#' starts a comment. */
static void parse_line(char *line)
{
    char *save = NULL, *word = strtok_r(line, " \t", &save);
    if (!word || word[0] == '#') return;
    if (strcmp(word, "fail") == 0 || strcmp(word, "latency") == 0) {
        if (S.rule_count == SHIM_RULES_MAX) return complain(word);
        struct rule r;
        memset(&r, 0, sizeof(r));
        snprintf(r.func, sizeof(r.func), "*");
        r.rate = 1.0;
        r.kind = word[0] == 'f' ? RULE_FAIL : RULE_LATENCY;
        char *arg = strtok_r(NULL, " \t", &save);
        if (!arg) return complain(word);
        if (r.kind == RULE_FAIL && parse_rv(arg, &r.rv) != 0) return complain(arg);
        if (r.kind == RULE_LATENCY) r.ms = strtoul(arg, NULL, 10);
        while ((arg = strtok_r(NULL, " \t", &save)) != NULL) {
            if (strncmp(arg, "func=", 5) == 0) snprintf(r.func, sizeof(r.func), "%s", arg + 5);
            else if (strncmp(arg, "rate=", 5) == 0) r.rate = strtod(arg + 5, NULL);
            else if (strncmp(arg, "nth=", 4) == 0) r.nth = strtoul(arg + 4, NULL, 10);
            else return complain(arg);
        }
        S.rules[S.rule_count++] = r;
        return;
    }
    char *arg = strtok_r(NULL, " \t", &save);
    if (!arg) return complain(word);
    if (strcmp(word, "max_sessions") == 0) S.max_sessions = strtoul(arg, NULL, 10);
    else if (strcmp(word, "profile") == 0) S.cloudhsm = strcmp(arg, "cloudhsm") == 0;
    else if (strcmp(word, "conf") == 0) snprintf(S.conf, sizeof(S.conf), "%s", arg);
    else if (strcmp(word, "drop") == 0) S.drop = strtoul(arg, NULL, 10);
    else if (strcmp(word, "hide") == 0) {
        CK_MECHANISM_TYPE m;
        if (parse_mech(arg, &m) != 0 || S.hidden_count == SHIM_HIDDEN_MAX) return complain(arg);
        S.hidden[S.hidden_count++] = m;
    } else
        complain(word);
}

/* Under S.mu: re-reads the control file when it changed (a stat per call). */
static void refresh(void)
{
    if (!S.control[0]) return;
    struct stat st;
    if (stat(S.control, &st) != 0) {
        if (S.have_control) {
            /* removed: behave as a plain forwarder */
            S.have_control = 0;
            S.rule_count = S.hidden_count = 0;
            S.max_sessions = 0;
            S.cloudhsm = 0;
            snprintf(S.conf, sizeof(S.conf), "%s", S.orig_conf);
        }
        return;
    }
    if (S.have_control && st.st_ino == S.ino && st.st_size == S.size && st.st_mtim.tv_sec == S.mtime.tv_sec &&
        st.st_mtim.tv_nsec == S.mtime.tv_nsec)
        return;
    FILE *f = fopen(S.control, "r");
    if (!f) return;
    S.have_control = 1;
    S.ino = st.st_ino;
    S.size = st.st_size;
    S.mtime = st.st_mtim;
    S.rule_count = S.hidden_count = 0;
    S.max_sessions = 0;
    S.cloudhsm = 0;
    snprintf(S.conf, sizeof(S.conf), "%s", S.orig_conf);
    unsigned long drop_before = S.drop;
    char line[1200];
    while (fgets(line, sizeof(line), f)) {
        line[strcspn(line, "\r\n")] = '\0';
        parse_line(line);
    }
    fclose(f);
    if (S.drop != drop_before) S.dropped_epoch = S.drop; /* every session open now is stale */
}

static double rnd(void)
{
    S.rng ^= S.rng << 13;
    S.rng ^= S.rng >> 7;
    S.rng ^= S.rng << 17;
    return (double)(S.rng >> 11) / (double)(1ULL << 53);
}

static struct session *session_find(CK_SESSION_HANDLE h)
{
    for (size_t i = 0; i < SHIM_SESSIONS_MAX; i++)
        if (S.sessions[i].used && S.sessions[i].h == h) return &S.sessions[i];
    return NULL;
}

static void sleep_ms(unsigned long ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

/* Before every forwarded call: the latency and faults that apply to `func`,
 * and whether `session` (CK_INVALID_HANDLE when none) was dropped. Rules for
 * "*" spare C_Initialize and C_Finalize (`life`): name them to fail them. */
static CK_RV gate_for(const char *func, CK_SESSION_HANDLE session, int life)
{
    pthread_mutex_lock(&S.mu);
    refresh();
    CK_RV rv = CKR_OK;
    unsigned long delay = 0;
    if (!S.real) rv = CKR_GENERAL_ERROR;
    if (rv == CKR_OK && session != CK_INVALID_HANDLE) {
        struct session *s = session_find(session);
        if (s && s->epoch < S.dropped_epoch) rv = CKR_SESSION_HANDLE_INVALID;
    }
    /* a stand-in waits for the next C_Initialize: until then the old token is gone */
    if (rv == CKR_OK && !life && strcmp(S.conf, S.loaded_conf) != 0) rv = CKR_DEVICE_REMOVED;
    for (size_t i = 0; i < S.rule_count; i++) {
        struct rule *r = &S.rules[i];
        int star = strcmp(r->func, "*") == 0;
        if ((star && life) || (!star && strcmp(r->func, func) != 0)) continue;
        r->seen++;
        if (r->kind == RULE_LATENCY) {
            delay += r->ms;
            continue;
        }
        if (rv != CKR_OK) continue;
        int hit = r->nth ? r->seen == r->nth : (r->rate >= 1.0 || rnd() < r->rate);
        if (hit) rv = r->rv;
    }
    pthread_mutex_unlock(&S.mu);
    if (delay) sleep_ms(delay);
    return rv;
}

static CK_RV gate(const char *func, CK_SESSION_HANDLE session) { return gate_for(func, session, 0); }

static int hidden(CK_MECHANISM_TYPE m)
{
    pthread_mutex_lock(&S.mu);
    int h = 0;
    for (size_t i = 0; i < S.hidden_count; i++) h |= S.hidden[i] == m;
    /* CloudHSM has neither standard RFC 3394/5649 name (docs/hsm.md) */
    if (S.cloudhsm && (m == M_AES_KEY_WRAP || m == M_AES_KEY_WRAP_PAD || m == M_AES_KEY_WRAP_KWP)) h = 1;
    if (!S.cloudhsm && m == VENDOR_AES_KEY_WRAP_ZERO_PAD) h = 1;
    pthread_mutex_unlock(&S.mu);
    return h;
}

static int cloudhsm(void)
{
    pthread_mutex_lock(&S.mu);
    int c = S.cloudhsm;
    pthread_mutex_unlock(&S.mu);
    return c;
}

/* The vendor wrap name becomes SoftHSM's RFC 5649 wrap. */
static CK_MECHANISM_TYPE real_mech(CK_MECHANISM_TYPE m)
{
    return m == VENDOR_AES_KEY_WRAP_ZERO_PAD ? M_AES_KEY_WRAP_PAD : m;
}

#define GATE(func, session)                                                                                            \
    do {                                                                                                               \
        CK_RV g__ = gate(func, session);                                                                               \
        if (g__ != CKR_OK) return g__;                                                                                 \
    } while (0)

#define MECH_GATE(mech)                                                                                                \
    do {                                                                                                               \
        if ((mech) && hidden((mech)->mechanism)) return CKR_MECHANISM_INVALID;                                         \
    } while (0)

static void pad_field(unsigned char *field, size_t n, const char *text)
{
    memset(field, ' ', n);
    size_t l = strlen(text);
    memcpy(field, text, l < n ? l : n);
}

/* ---- calls with their own behaviour ---- */

static CK_RV shim_Initialize(void *args)
{
    CK_RV rv = gate_for("C_Initialize", CK_INVALID_HANDLE, 1);
    if (rv != CKR_OK) return rv;
    pthread_mutex_lock(&S.mu);
    /* SoftHSM2 reads SOFTHSM2_CONF at C_Initialize: a stand-in token takes effect here */
    if (S.conf[0]) setenv("SOFTHSM2_CONF", S.conf, 1);
    rv = S.real->C_Initialize(args);
    if (rv == CKR_OK) {
        snprintf(S.loaded_conf, sizeof(S.loaded_conf), "%s", S.conf);
        memset(S.sessions, 0, sizeof(S.sessions));
        S.open_sessions = 0;
    }
    pthread_mutex_unlock(&S.mu);
    return rv;
}

static CK_RV shim_Finalize(void *reserved)
{
    CK_RV g = gate_for("C_Finalize", CK_INVALID_HANDLE, 1);
    if (g != CKR_OK) return g;
    pthread_mutex_lock(&S.mu);
    CK_RV rv = S.real ? S.real->C_Finalize(reserved) : CKR_GENERAL_ERROR;
    if (rv == CKR_OK) {
        memset(S.sessions, 0, sizeof(S.sessions));
        S.open_sessions = 0;
    }
    pthread_mutex_unlock(&S.mu);
    return rv;
}

static CK_RV shim_GetInfo(CK_INFO_PTR info)
{
    GATE("C_GetInfo", CK_INVALID_HANDLE);
    CK_RV rv = S.real->C_GetInfo(info);
    if (rv == CKR_OK && info && cloudhsm()) {
        pad_field(info->manufacturerID, sizeof(info->manufacturerID), "Marvell Semiconductors, Inc.");
        pad_field(info->libraryDescription, sizeof(info->libraryDescription), "CloudHSM PKCS#11 (emulated)");
    }
    return rv;
}

static CK_RV shim_GetTokenInfo(CK_SLOT_ID slot, CK_TOKEN_INFO_PTR info)
{
    GATE("C_GetTokenInfo", CK_INVALID_HANDLE);
    CK_RV rv = S.real->C_GetTokenInfo(slot, info);
    if (rv == CKR_OK && info && cloudhsm()) {
        pad_field(info->manufacturerID, sizeof(info->manufacturerID), "Marvell Semiconductors, Inc.");
        pad_field(info->model, sizeof(info->model), "LS2");
    }
    return rv;
}

static CK_RV shim_GetMechanismList(CK_SLOT_ID slot, CK_MECHANISM_TYPE_PTR list, CK_ULONG_PTR count)
{
    GATE("C_GetMechanismList", CK_INVALID_HANDLE);
    if (!count) return CKR_ARGUMENTS_BAD;
    CK_MECHANISM_TYPE all[SHIM_MECHS_MAX], out[SHIM_MECHS_MAX + 1];
    CK_ULONG n = SHIM_MECHS_MAX;
    CK_RV rv = S.real->C_GetMechanismList(slot, all, &n);
    if (rv != CKR_OK) return rv;
    CK_ULONG m = 0;
    int wrap_pad = 0;
    for (CK_ULONG i = 0; i < n; i++) {
        if (all[i] == M_AES_KEY_WRAP_PAD) wrap_pad = 1;
        if (!hidden(all[i])) out[m++] = all[i];
    }
    if (wrap_pad && cloudhsm() && !hidden(VENDOR_AES_KEY_WRAP_ZERO_PAD)) out[m++] = VENDOR_AES_KEY_WRAP_ZERO_PAD;
    if (!list) {
        *count = m;
        return CKR_OK;
    }
    if (*count < m) {
        *count = m;
        return CKR_BUFFER_TOO_SMALL;
    }
    memcpy(list, out, m * sizeof(*out));
    *count = m;
    return CKR_OK;
}

static CK_RV shim_GetMechanismInfo(CK_SLOT_ID slot, CK_MECHANISM_TYPE type, CK_MECHANISM_INFO_PTR info)
{
    GATE("C_GetMechanismInfo", CK_INVALID_HANDLE);
    if (hidden(type)) return CKR_MECHANISM_INVALID;
    return S.real->C_GetMechanismInfo(slot, real_mech(type), info);
}

static CK_RV shim_OpenSession(CK_SLOT_ID slot, CK_FLAGS flags, void *app, CK_NOTIFY notify,
                              CK_SESSION_HANDLE_PTR out)
{
    GATE("C_OpenSession", CK_INVALID_HANDLE);
    pthread_mutex_lock(&S.mu);
    CK_RV rv = CKR_OK;
    if (S.max_sessions && S.open_sessions >= S.max_sessions) rv = CKR_SESSION_COUNT;
    if (rv == CKR_OK) rv = S.real->C_OpenSession(slot, flags, app, notify, out);
    if (rv == CKR_OK) {
        for (size_t i = 0; i < SHIM_SESSIONS_MAX; i++) {
            if (S.sessions[i].used) continue;
            S.sessions[i] = (struct session){*out, S.drop, 1};
            S.open_sessions++;
            break;
        }
    }
    pthread_mutex_unlock(&S.mu);
    return rv;
}

static CK_RV shim_CloseSession(CK_SESSION_HANDLE h)
{
    /* A dropped session is closed for real all the same, quietly. */
    pthread_mutex_lock(&S.mu);
    refresh();
    struct session *s = session_find(h);
    int stale = s && s->epoch < S.dropped_epoch;
    if (s) {
        s->used = 0;
        S.open_sessions--;
    }
    pthread_mutex_unlock(&S.mu);
    if (!stale) GATE("C_CloseSession", CK_INVALID_HANDLE);
    CK_RV rv = S.real->C_CloseSession(h);
    return stale ? CKR_SESSION_HANDLE_INVALID : rv;
}

static CK_RV shim_CloseAllSessions(CK_SLOT_ID slot)
{
    GATE("C_CloseAllSessions", CK_INVALID_HANDLE);
    CK_RV rv = S.real->C_CloseAllSessions(slot);
    if (rv == CKR_OK) {
        pthread_mutex_lock(&S.mu);
        memset(S.sessions, 0, sizeof(S.sessions));
        S.open_sessions = 0;
        pthread_mutex_unlock(&S.mu);
    }
    return rv;
}

/* CloudHSM makes the GCM IV and writes it into the caller's buffer; its
 * callers pass ulIvBits 0 (AWS's sample), which SoftHSM would not take. */
static CK_RV gcm_params(CK_SESSION_HANDLE h, CK_MECHANISM_PTR mech, CK_MECHANISM *copy, CK_GCM_PARAMS *p, int encrypt)
{
    *copy = *mech;
    if (mech->mechanism != CKM_AES_GCM || !cloudhsm()) return CKR_OK;
    if (!mech->pParameter || mech->ulParameterLen != sizeof(CK_GCM_PARAMS)) return CKR_MECHANISM_PARAM_INVALID;
    *p = *(CK_GCM_PARAMS *)mech->pParameter;
    if (!p->pIv || p->ulIvLen != 12) return CKR_MECHANISM_PARAM_INVALID;
    if (encrypt) {
        CK_RV rv = S.real->C_GenerateRandom(h, p->pIv, 12);
        if (rv != CKR_OK) return rv;
    }
    p->ulIvBits = 96;
    copy->pParameter = p;
    return CKR_OK;
}

static CK_RV shim_EncryptInit(CK_SESSION_HANDLE h, CK_MECHANISM_PTR mech, CK_OBJECT_HANDLE key)
{
    GATE("C_EncryptInit", h);
    MECH_GATE(mech);
    if (!mech) return S.real->C_EncryptInit(h, mech, key);
    CK_MECHANISM copy;
    CK_GCM_PARAMS p;
    CK_RV rv = gcm_params(h, mech, &copy, &p, 1);
    return rv != CKR_OK ? rv : S.real->C_EncryptInit(h, &copy, key);
}

static CK_RV shim_DecryptInit(CK_SESSION_HANDLE h, CK_MECHANISM_PTR mech, CK_OBJECT_HANDLE key)
{
    GATE("C_DecryptInit", h);
    MECH_GATE(mech);
    if (!mech) return S.real->C_DecryptInit(h, mech, key);
    CK_MECHANISM copy;
    CK_GCM_PARAMS p;
    CK_RV rv = gcm_params(h, mech, &copy, &p, 0);
    return rv != CKR_OK ? rv : S.real->C_DecryptInit(h, &copy, key);
}

static CK_RV shim_WrapKey(CK_SESSION_HANDLE h, CK_MECHANISM_PTR mech, CK_OBJECT_HANDLE wrapping, CK_OBJECT_HANDLE key,
                          CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
    GATE("C_WrapKey", h);
    MECH_GATE(mech);
    if (!mech) return S.real->C_WrapKey(h, mech, wrapping, key, out, out_len);
    CK_MECHANISM copy = *mech;
    copy.mechanism = real_mech(mech->mechanism);
    return S.real->C_WrapKey(h, &copy, wrapping, key, out, out_len);
}

static CK_RV shim_UnwrapKey(CK_SESSION_HANDLE h, CK_MECHANISM_PTR mech, CK_OBJECT_HANDLE unwrapping,
                            CK_BYTE_PTR wrapped, CK_ULONG wrapped_len, CK_ATTRIBUTE_PTR tmpl, CK_ULONG n,
                            CK_OBJECT_HANDLE_PTR key)
{
    GATE("C_UnwrapKey", h);
    MECH_GATE(mech);
    if (!mech) return S.real->C_UnwrapKey(h, mech, unwrapping, wrapped, wrapped_len, tmpl, n, key);
    CK_MECHANISM copy = *mech;
    copy.mechanism = real_mech(mech->mechanism);
    return S.real->C_UnwrapKey(h, &copy, unwrapping, wrapped, wrapped_len, tmpl, n, key);
}

/* ---- plain forwarders: gate, then the real call ---- */

#define FWD_S(name, params, args)                                                                                      \
    static CK_RV shim_##name params                                                                                    \
    {                                                                                                                  \
        GATE("C_" #name, h);                                                                                           \
        return S.real->C_##name args;                                                                                  \
    }
#define FWD_M(name, params, args)                                                                                      \
    static CK_RV shim_##name params                                                                                    \
    {                                                                                                                  \
        GATE("C_" #name, h);                                                                                           \
        MECH_GATE(mech);                                                                                               \
        return S.real->C_##name args;                                                                                  \
    }
#define FWD_N(name, params, args)                                                                                      \
    static CK_RV shim_##name params                                                                                    \
    {                                                                                                                  \
        GATE("C_" #name, CK_INVALID_HANDLE);                                                                           \
        return S.real->C_##name args;                                                                                  \
    }

FWD_N(GetSlotList, (CK_BBOOL present, CK_SLOT_ID_PTR list, CK_ULONG_PTR count), (present, list, count))
FWD_N(GetSlotInfo, (CK_SLOT_ID slot, CK_SLOT_INFO_PTR info), (slot, info))
FWD_N(InitToken, (CK_SLOT_ID slot, CK_UTF8CHAR_PTR pin, CK_ULONG len, CK_UTF8CHAR_PTR label), (slot, pin, len, label))
FWD_N(WaitForSlotEvent, (CK_FLAGS flags, CK_SLOT_ID_PTR slot, void *reserved), (flags, slot, reserved))
FWD_S(InitPIN, (CK_SESSION_HANDLE h, CK_UTF8CHAR_PTR pin, CK_ULONG len), (h, pin, len))
FWD_S(SetPIN, (CK_SESSION_HANDLE h, CK_UTF8CHAR_PTR o, CK_ULONG ol, CK_UTF8CHAR_PTR n, CK_ULONG nl), (h, o, ol, n, nl))
FWD_S(GetSessionInfo, (CK_SESSION_HANDLE h, CK_SESSION_INFO_PTR info), (h, info))
FWD_S(GetOperationState, (CK_SESSION_HANDLE h, CK_BYTE_PTR st, CK_ULONG_PTR len), (h, st, len))
FWD_S(SetOperationState,
      (CK_SESSION_HANDLE h, CK_BYTE_PTR st, CK_ULONG len, CK_OBJECT_HANDLE ek, CK_OBJECT_HANDLE ak),
      (h, st, len, ek, ak))
FWD_S(Login, (CK_SESSION_HANDLE h, CK_USER_TYPE user, CK_UTF8CHAR_PTR pin, CK_ULONG len), (h, user, pin, len))
FWD_S(Logout, (CK_SESSION_HANDLE h), (h))
FWD_S(CreateObject, (CK_SESSION_HANDLE h, CK_ATTRIBUTE_PTR t, CK_ULONG n, CK_OBJECT_HANDLE_PTR o), (h, t, n, o))
FWD_S(CopyObject,
      (CK_SESSION_HANDLE h, CK_OBJECT_HANDLE o, CK_ATTRIBUTE_PTR t, CK_ULONG n, CK_OBJECT_HANDLE_PTR out),
      (h, o, t, n, out))
FWD_S(DestroyObject, (CK_SESSION_HANDLE h, CK_OBJECT_HANDLE o), (h, o))
FWD_S(GetObjectSize, (CK_SESSION_HANDLE h, CK_OBJECT_HANDLE o, CK_ULONG_PTR size), (h, o, size))
FWD_S(GetAttributeValue, (CK_SESSION_HANDLE h, CK_OBJECT_HANDLE o, CK_ATTRIBUTE_PTR t, CK_ULONG n), (h, o, t, n))
FWD_S(SetAttributeValue, (CK_SESSION_HANDLE h, CK_OBJECT_HANDLE o, CK_ATTRIBUTE_PTR t, CK_ULONG n), (h, o, t, n))
FWD_S(FindObjectsInit, (CK_SESSION_HANDLE h, CK_ATTRIBUTE_PTR t, CK_ULONG n), (h, t, n))
FWD_S(FindObjects, (CK_SESSION_HANDLE h, CK_OBJECT_HANDLE_PTR o, CK_ULONG max, CK_ULONG_PTR n), (h, o, max, n))
FWD_S(FindObjectsFinal, (CK_SESSION_HANDLE h), (h))
FWD_S(Encrypt, (CK_SESSION_HANDLE h, CK_BYTE_PTR d, CK_ULONG l, CK_BYTE_PTR o, CK_ULONG_PTR ol), (h, d, l, o, ol))
FWD_S(EncryptUpdate, (CK_SESSION_HANDLE h, CK_BYTE_PTR d, CK_ULONG l, CK_BYTE_PTR o, CK_ULONG_PTR ol),
      (h, d, l, o, ol))
FWD_S(EncryptFinal, (CK_SESSION_HANDLE h, CK_BYTE_PTR o, CK_ULONG_PTR ol), (h, o, ol))
FWD_S(Decrypt, (CK_SESSION_HANDLE h, CK_BYTE_PTR d, CK_ULONG l, CK_BYTE_PTR o, CK_ULONG_PTR ol), (h, d, l, o, ol))
FWD_S(DecryptUpdate, (CK_SESSION_HANDLE h, CK_BYTE_PTR d, CK_ULONG l, CK_BYTE_PTR o, CK_ULONG_PTR ol),
      (h, d, l, o, ol))
FWD_S(DecryptFinal, (CK_SESSION_HANDLE h, CK_BYTE_PTR o, CK_ULONG_PTR ol), (h, o, ol))
FWD_M(DigestInit, (CK_SESSION_HANDLE h, CK_MECHANISM_PTR mech), (h, mech))
FWD_S(Digest, (CK_SESSION_HANDLE h, CK_BYTE_PTR d, CK_ULONG l, CK_BYTE_PTR o, CK_ULONG_PTR ol), (h, d, l, o, ol))
FWD_S(DigestUpdate, (CK_SESSION_HANDLE h, CK_BYTE_PTR d, CK_ULONG l), (h, d, l))
FWD_S(DigestKey, (CK_SESSION_HANDLE h, CK_OBJECT_HANDLE k), (h, k))
FWD_S(DigestFinal, (CK_SESSION_HANDLE h, CK_BYTE_PTR o, CK_ULONG_PTR ol), (h, o, ol))
FWD_M(SignInit, (CK_SESSION_HANDLE h, CK_MECHANISM_PTR mech, CK_OBJECT_HANDLE k), (h, mech, k))
FWD_S(Sign, (CK_SESSION_HANDLE h, CK_BYTE_PTR d, CK_ULONG l, CK_BYTE_PTR o, CK_ULONG_PTR ol), (h, d, l, o, ol))
FWD_S(SignUpdate, (CK_SESSION_HANDLE h, CK_BYTE_PTR d, CK_ULONG l), (h, d, l))
FWD_S(SignFinal, (CK_SESSION_HANDLE h, CK_BYTE_PTR o, CK_ULONG_PTR ol), (h, o, ol))
FWD_M(SignRecoverInit, (CK_SESSION_HANDLE h, CK_MECHANISM_PTR mech, CK_OBJECT_HANDLE k), (h, mech, k))
FWD_S(SignRecover, (CK_SESSION_HANDLE h, CK_BYTE_PTR d, CK_ULONG l, CK_BYTE_PTR o, CK_ULONG_PTR ol), (h, d, l, o, ol))
FWD_M(VerifyInit, (CK_SESSION_HANDLE h, CK_MECHANISM_PTR mech, CK_OBJECT_HANDLE k), (h, mech, k))
FWD_S(Verify, (CK_SESSION_HANDLE h, CK_BYTE_PTR d, CK_ULONG l, CK_BYTE_PTR s, CK_ULONG sl), (h, d, l, s, sl))
FWD_S(VerifyUpdate, (CK_SESSION_HANDLE h, CK_BYTE_PTR d, CK_ULONG l), (h, d, l))
FWD_S(VerifyFinal, (CK_SESSION_HANDLE h, CK_BYTE_PTR s, CK_ULONG sl), (h, s, sl))
FWD_M(VerifyRecoverInit, (CK_SESSION_HANDLE h, CK_MECHANISM_PTR mech, CK_OBJECT_HANDLE k), (h, mech, k))
FWD_S(VerifyRecover, (CK_SESSION_HANDLE h, CK_BYTE_PTR s, CK_ULONG sl, CK_BYTE_PTR d, CK_ULONG_PTR dl),
      (h, s, sl, d, dl))
FWD_S(DigestEncryptUpdate, (CK_SESSION_HANDLE h, CK_BYTE_PTR d, CK_ULONG l, CK_BYTE_PTR o, CK_ULONG_PTR ol),
      (h, d, l, o, ol))
FWD_S(DecryptDigestUpdate, (CK_SESSION_HANDLE h, CK_BYTE_PTR d, CK_ULONG l, CK_BYTE_PTR o, CK_ULONG_PTR ol),
      (h, d, l, o, ol))
FWD_S(SignEncryptUpdate, (CK_SESSION_HANDLE h, CK_BYTE_PTR d, CK_ULONG l, CK_BYTE_PTR o, CK_ULONG_PTR ol),
      (h, d, l, o, ol))
FWD_S(DecryptVerifyUpdate, (CK_SESSION_HANDLE h, CK_BYTE_PTR d, CK_ULONG l, CK_BYTE_PTR o, CK_ULONG_PTR ol),
      (h, d, l, o, ol))
FWD_M(GenerateKey, (CK_SESSION_HANDLE h, CK_MECHANISM_PTR mech, CK_ATTRIBUTE_PTR t, CK_ULONG n, CK_OBJECT_HANDLE_PTR k),
      (h, mech, t, n, k))
FWD_M(GenerateKeyPair,
      (CK_SESSION_HANDLE h, CK_MECHANISM_PTR mech, CK_ATTRIBUTE_PTR pt, CK_ULONG pn, CK_ATTRIBUTE_PTR st, CK_ULONG sn,
       CK_OBJECT_HANDLE_PTR pk, CK_OBJECT_HANDLE_PTR sk),
      (h, mech, pt, pn, st, sn, pk, sk))
FWD_M(DeriveKey,
      (CK_SESSION_HANDLE h, CK_MECHANISM_PTR mech, CK_OBJECT_HANDLE base, CK_ATTRIBUTE_PTR t, CK_ULONG n,
       CK_OBJECT_HANDLE_PTR k),
      (h, mech, base, t, n, k))
FWD_S(SeedRandom, (CK_SESSION_HANDLE h, CK_BYTE_PTR s, CK_ULONG l), (h, s, l))
FWD_S(GenerateRandom, (CK_SESSION_HANDLE h, CK_BYTE_PTR o, CK_ULONG l), (h, o, l))
FWD_S(GetFunctionStatus, (CK_SESSION_HANDLE h), (h))
FWD_S(CancelFunction, (CK_SESSION_HANDLE h), (h))

CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR out);

static CK_FUNCTION_LIST shim_list = {
    {2, 40},
    shim_Initialize, shim_Finalize, shim_GetInfo, C_GetFunctionList, shim_GetSlotList, shim_GetSlotInfo,
    shim_GetTokenInfo, shim_GetMechanismList, shim_GetMechanismInfo, shim_InitToken, shim_InitPIN, shim_SetPIN,
    shim_OpenSession, shim_CloseSession, shim_CloseAllSessions, shim_GetSessionInfo, shim_GetOperationState,
    shim_SetOperationState, shim_Login, shim_Logout, shim_CreateObject, shim_CopyObject, shim_DestroyObject,
    shim_GetObjectSize, shim_GetAttributeValue, shim_SetAttributeValue, shim_FindObjectsInit, shim_FindObjects,
    shim_FindObjectsFinal, shim_EncryptInit, shim_Encrypt, shim_EncryptUpdate, shim_EncryptFinal, shim_DecryptInit,
    shim_Decrypt, shim_DecryptUpdate, shim_DecryptFinal, shim_DigestInit, shim_Digest, shim_DigestUpdate,
    shim_DigestKey, shim_DigestFinal, shim_SignInit, shim_Sign, shim_SignUpdate, shim_SignFinal, shim_SignRecoverInit,
    shim_SignRecover, shim_VerifyInit, shim_Verify, shim_VerifyUpdate, shim_VerifyFinal, shim_VerifyRecoverInit,
    shim_VerifyRecover, shim_DigestEncryptUpdate, shim_DecryptDigestUpdate, shim_SignEncryptUpdate,
    shim_DecryptVerifyUpdate, shim_GenerateKey, shim_GenerateKeyPair, shim_WrapKey, shim_UnwrapKey, shim_DeriveKey,
    shim_SeedRandom, shim_GenerateRandom, shim_GetFunctionStatus, shim_CancelFunction, shim_WaitForSlotEvent,
};

/* Loads SoftHSM2 once per process, on the first C_GetFunctionList. */
__attribute__((visibility("default"))) CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR out)
{
    if (!out) return CKR_ARGUMENTS_BAD;
    pthread_mutex_lock(&S.mu);
    CK_RV rv = CKR_OK;
    if (!S.real) {
        const char *path = getenv("CV_P11SHIM_MODULE");
        if (!path || !*path) path = DEFAULT_MODULE;
        const char *control = getenv("CV_P11SHIM_CONTROL");
        snprintf(S.control, sizeof(S.control), "%s", control ? control : "");
        S.rng = (unsigned long long)time(NULL) * 2654435761ULL | 1;
        S.dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
        CK_C_GetFunctionList get = NULL;
        void *sym = S.dl ? dlsym(S.dl, "C_GetFunctionList") : NULL;
        memcpy(&get, &sym, sizeof(get));
        if (!get || get(&S.real) != CKR_OK) {
            fprintf(stderr, "p11shim: cannot load %s: %s\n", path, S.dl ? "no C_GetFunctionList" : dlerror());
            S.real = NULL;
            rv = CKR_GENERAL_ERROR;
        }
        const char *conf = getenv("SOFTHSM2_CONF");
        snprintf(S.orig_conf, sizeof(S.orig_conf), "%s", conf ? conf : "");
        snprintf(S.conf, sizeof(S.conf), "%s", S.orig_conf);
        snprintf(S.loaded_conf, sizeof(S.loaded_conf), "%s", S.orig_conf);
    }
    pthread_mutex_unlock(&S.mu);
    if (rv == CKR_OK) *out = &shim_list;
    return rv;
}
