/* Breadth-first search of checker/native.py: the loop of checker.explore._explore in C.
 * Same state ids, parents, actions, violations and stop rules as the Python engine. */
enum { MM_MORE = 0, MM_DONE = 1, MM_ERROR = 2, MM_LIMIT = 3, MM_ALLVIOL = 4, MM_DEPTH = 5,
       MM_NOMEM = 6 };

#define PALLOC (PERMS ? PERMS : 1)
static uint8_t *ST, *KEYS, *PERM;  /* with PERMS, a state is its key and permutation: no ST */
static int32_t *PARENT, *ACTION;
static int64_t COUNT, CAP, NEXT, LAYER_END, TRANS, MAX_STATES, DEADLOCK = -1, ERRSTATE = -1;
static int DEPTH, MAX_DEPTH, CHECK_DEADLOCK, STOP_ALL, NCHECKS, POR;
static uint64_t *HT;  /* (low 32 bits of the hash << 32) | (id + 1); 0 = empty */
static uint64_t HCAP;
static int64_t VIOL[NINV + NFIN + 1];
static int8_t *SAFE;
static int32_t *PROC;
/* Two expansion buffers: the successors of the next state are computed, keyed and their
 * hash-table slots prefetched while the current state's are looked up (the lookups, and
 * so the state ids, stay in order). */
static V CUR[2][NS], OUT[2][(size_t)NACT * NS];
static int AIDS[2][NACT], PICK[NACT], NSUCC[2];
static int64_t PREPARED[2] = {-1, -1};
static uint8_t EKEY[2][(size_t)NACT * W], EPERM[2][(size_t)NACT * PALLOC];
static uint64_t EHASH[2][NACT];
static int64_t EFOUND[NACT];

/* The hash table on transparent huge pages: its random probes miss the TLB less. */
static void *huge(void *p, size_t n) {
    const uintptr_t H = (uintptr_t)1 << 21;
    if (p && n >= 2 * H) {
        uintptr_t a = ((uintptr_t)p + H - 1) & ~(H - 1), e = ((uintptr_t)p + n) & ~(H - 1);
        if (e > a) madvise((void *)a, e - a, MADV_HUGEPAGE);
    }
    return p;
}
static uint64_t hash(const uint8_t *k) {
    uint64_t h = 0x9E3779B97F4A7C15ULL ^ W, x;
    int i = 0;
    for (; i + 8 <= W; i += 8) {
        memcpy(&x, k + i, 8);
        h = (h ^ x) * 0xff51afd7ed558ccdULL;
        h ^= h >> 32;
    }
    x = 0;
    if (i < W) { memcpy(&x, k + i, W - i); h = (h ^ x) * 0xc4ceb9fe1a85ec53ULL; }
    h ^= h >> 29; h *= 0xbf58476d1ce4e5b9ULL; h ^= h >> 32;
    return h;
}
static uint8_t *key_of(int64_t id) { return (SYM ? KEYS : ST) + (size_t)id * W; }
static int64_t lookup_h(const uint8_t *k, uint64_t h) {
    uint64_t m = HCAP - 1, i = h & m, tag = h & 0xffffffffULL;
    while (HT[i]) {
        if ((HT[i] >> 32) == tag) {
            int64_t id = (int64_t)(HT[i] & 0xffffffffULL) - 1;
            if (!memcmp(key_of(id), k, W)) return id;
        }
        i = (i + 1) & m;
    }
    return -1;
}
static void insert_h(uint64_t h, int64_t id) {
    uint64_t m = HCAP - 1, i = h & m;
    while (HT[i]) i = (i + 1) & m;
    HT[i] = ((h & 0xffffffffULL) << 32) | (uint64_t)(id + 1);
}
static int grow(void) {
    if (COUNT + 1 >= CAP) {
        int64_t cap = CAP * 2;
        if (PERMS) {
            uint8_t *pm = realloc(PERM, (size_t)cap * PALLOC);
            if (!pm) return -1;
            PERM = pm;
        } else {
            uint8_t *st = realloc(ST, (size_t)cap * W);
            if (!st) return -1;
            ST = st;
        }
        if (SYM) {
            uint8_t *k = realloc(KEYS, (size_t)cap * W);
            if (!k) return -1;
            KEYS = k;
        }
        int32_t *p = realloc(PARENT, (size_t)cap * 4), *a;
        if (!p) return -1;
        PARENT = p;
        a = realloc(ACTION, (size_t)cap * 4);
        if (!a) return -1;
        ACTION = a;
        CAP = cap;
    }
    if ((uint64_t)(COUNT + 1) * 4 > HCAP * 3) {  /* load factor 3/4 */
        uint64_t cap = HCAP * 2;
        uint64_t *ht = huge(calloc(cap, 8), cap * 8), *old = HT, oldcap = HCAP;
        if (!ht) return -1;
        HT = ht;
        HCAP = cap;
        for (uint64_t j = 0; j < oldcap; j++)  /* the entry holds the hash bits that place it */
            if (old[j]) {
                uint64_t m = cap - 1, i = (old[j] >> 32) & m;
                while (HT[i]) i = (i + 1) & m;
                HT[i] = old[j];
            }
        free(old);
    }
    return 0;
}
static int nviol(void) {
    int c = 0;
    for (int k = 0; k < NINV + NFIN; k++) c += VIOL[k] >= 0;
    return c + (DEADLOCK >= 0);
}
static void check_state(int64_t sid, const V *s) {
    for (int k = 0; k < NINV; k++)
        if (VIOL[k] < 0 && !INV[k](s)) VIOL[k] = sid;
    int open = 0;
    for (int k = 0; k < NFIN; k++) open |= VIOL[NINV + k] < 0;
    if (open && finished(s))
        for (int k = 0; k < NFIN; k++)
            if (VIOL[NINV + k] < 0 && !FIN[k](s)) VIOL[NINV + k] = sid;
}
static int add(const V *s, const uint8_t *k, const uint8_t *perm, uint64_t h, int64_t parent,
               int aid) {
    if (COUNT >= MAX_STATES) return MM_LIMIT;
    if (grow()) return MM_NOMEM;
    int64_t sid = COUNT++;
    if (PERMS) memcpy(PERM + (size_t)sid * PALLOC, perm, PALLOC);
    else pack(s, ST + (size_t)sid * W);
    if (SYM) memcpy(KEYS + (size_t)sid * W, k, W);
    PARENT[sid] = (int32_t)parent;
    ACTION[sid] = aid;
    insert_h(h, sid);
    check_state(sid, s);
    if (ERR) { ERRSTATE = sid; return MM_ERROR; }
    return MM_MORE;
}

int mm_init(const V *init, int64_t max_states, int max_depth, int check_deadlock,
            int stop_all, int nchecks, int por, const int8_t *safe, const int32_t *proc) {
    ERR = 0; COUNT = 0; CAP = 1024; NEXT = 0; LAYER_END = 1; TRANS = 0; DEPTH = 0;
    PREPARED[0] = PREPARED[1] = -1;
    DEADLOCK = -1; ERRSTATE = -1; HCAP = 4096;
    MAX_STATES = max_states; MAX_DEPTH = max_depth; CHECK_DEADLOCK = check_deadlock;
    STOP_ALL = stop_all; NCHECKS = nchecks; POR = por; SAFE = (int8_t *)safe;
    PROC = (int32_t *)proc;
    for (int k = 0; k < NINV + NFIN + 1; k++) VIOL[k] = -1;
    ST = PERMS ? 0 : malloc((size_t)CAP * W); KEYS = SYM ? malloc((size_t)CAP * W) : 0;
    PERM = PERMS ? malloc((size_t)CAP * PALLOC) : 0;
    PARENT = malloc((size_t)CAP * 4); ACTION = malloc((size_t)CAP * 4);
    HT = calloc(HCAP, 8);
    if ((!PERMS && !ST) || !PARENT || !ACTION || !HT || (SYM && !KEYS) || (PERMS && !PERM))
        return MM_NOMEM;
    static uint8_t k[W], pm[PALLOC];
    make_key(init, k, pm);
    return add(init, k, pm, hash(k), -1, -1);
}

/* Successors of state `id` into buffer b, with keys and hashes; their slots prefetched. */
static void prepare(int b, int64_t id) {
    int saved = ERR;
    ERR = 0;
#if PERMS
    unkey(KEYS + (size_t)id * W, PERM + (size_t)id * PALLOC, CUR[b]);
#else
    unpack(ST + (size_t)id * W, CUR[b]);
#endif
    int n = successors(CUR[b], OUT[b], AIDS[b]);
    NSUCC[b] = ERR ? -1 : n;
    ERR = saved;
    for (int e = 0; e < n; e++) {
        uint8_t *k = EKEY[b] + (size_t)e * W;
        make_key(OUT[b] + (size_t)e * NS, k, EPERM[b] + (size_t)e * PALLOC);
        EHASH[b][e] = hash(k);
        __builtin_prefetch(&HT[EHASH[b][e] & (HCAP - 1)]);
    }
    PREPARED[b] = id;
}

int mm_run(int64_t budget) {
    while (NEXT < COUNT) {
        if (budget-- <= 0) return MM_MORE;
        if (NEXT == LAYER_END) {
            DEPTH++;
            LAYER_END = COUNT;
            if (MAX_DEPTH >= 0 && DEPTH >= MAX_DEPTH) return MM_DEPTH;
        }
        int b = (int)(NEXT & 1);
        if (PREPARED[b] != NEXT) prepare(b, NEXT);
        if (NEXT + 1 < COUNT && PREPARED[b ^ 1] != NEXT + 1) prepare(b ^ 1, NEXT + 1);
        int n = NSUCC[b];
        const int *aids = AIDS[b];
        const uint64_t *eh = EHASH[b];
        if (n < 0) { ERRSTATE = NEXT; return MM_ERROR; }
        if (n == 0 && CHECK_DEADLOCK && DEADLOCK < 0 && !finished(CUR[b])) DEADLOCK = NEXT;
        for (int e = 0; e < n; e++) {  /* prefetch the first candidate's key */
            uint64_t m = HCAP - 1, i = eh[e] & m, tag = eh[e] & 0xffffffffULL;
            while (HT[i] && (HT[i] >> 32) != tag) i = (i + 1) & m;
            if (HT[i]) __builtin_prefetch(key_of((int64_t)(HT[i] & 0xffffffffULL) - 1));
            PICK[e] = 1;
        }
        for (int e = 0; e < n; e++) EFOUND[e] = lookup_h(EKEY[b] + (size_t)e * W, eh[e]);
        if (POR && n > 1) {
            int first = -1;
            for (int e = 0; e < n && first < 0; e++) if (SAFE[aids[e]]) first = e;
            if (first >= 0) {
                int p = PROC[aids[first]], m = 0, back = 0;
                for (int e = 0; e < n; e++) m += PROC[aids[e]] == p;
                if (m < n) {
                    for (int e = 0; e < n && !back; e++)
                        back = PROC[aids[e]] == p && EFOUND[e] >= 0 && EFOUND[e] < LAYER_END;
                    if (!back) for (int e = 0; e < n; e++) PICK[e] = PROC[aids[e]] == p;
                }
            }
        }
        int added = 0;
        for (int e = 0; e < n; e++) {
            if (!PICK[e]) continue;
            TRANS++;
            if (EFOUND[e] >= 0) continue;
            const uint8_t *k = EKEY[b] + (size_t)e * W;
            if (added && lookup_h(k, eh[e]) >= 0) continue;  /* an earlier entry's twin */
            int r = add(OUT[b] + (size_t)e * NS, k, EPERM[b] + (size_t)e * PALLOC, eh[e], NEXT,
                        aids[e]);
            if (r != MM_MORE) return r;
            added = 1;
        }
        NEXT++;
        if (STOP_ALL && NCHECKS && nviol() >= NCHECKS) return MM_ALLVIOL;
    }
    return MM_DONE;
}

int64_t mm_count(void) { return COUNT; }
int64_t mm_transitions(void) { return TRANS; }
int mm_depth(void) { return DEPTH; }
int64_t mm_violation(int k) { return VIOL[k]; }
int64_t mm_deadlock(void) { return DEADLOCK; }
int64_t mm_errstate(void) { return ERRSTATE; }
int mm_width(void) { return W; }
const uint8_t *mm_states(void) { return ST; }
const uint8_t *mm_keys(void) { return KEYS; }
const uint8_t *mm_perms(void) { return PERM; }
int mm_nperms(void) { return PERMS; }
/* The concrete state of a stored key and permutation (PERMS only). */
void mm_unkey(const uint8_t *k, const uint8_t *perm, V *out) {
#if PERMS
    unkey(k, perm, out);
#else
    (void)k; (void)perm; (void)out;
#endif
}
const int32_t *mm_parents(void) { return PARENT; }
const int32_t *mm_actions(void) { return ACTION; }
/* Python takes the states, parents and actions (it frees them); the rest is freed here. */
void mm_release(void) {
    ST = 0; PARENT = ACTION = 0;
    if (PERMS) { KEYS = 0; PERM = 0; }
}
void mm_free(void) {
    free(ST); free(KEYS); free(PERM); free(PARENT); free(ACTION); free(HT);
    ST = KEYS = PERM = 0; PARENT = ACTION = 0; HT = 0;
}
