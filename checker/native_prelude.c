/* Helpers of the generated code (checker/cgen.py): Python integer semantics, errors as a flag. */
static inline V floordiv(V a, V b) {
    if (b == 0) { ERR = 1; return 0; }
    V q = a / b;
    if ((a % b != 0) && ((a < 0) != (b < 0))) q--;
    return q;
}
static inline V floormod(V a, V b) {
    if (b == 0) { ERR = 1; return 0; }
    V m = a % b;
    if (m != 0 && ((m < 0) != (b < 0))) m += b;
    return m;
}
static inline V shl(V a, V b) {
    if (b < 0) { ERR = 1; return 0; }
    if (b >= 62) { ERR = 1; return 0; }
    return (V)((uint64_t)a << b);
}
static inline V shr(V a, V b) {
    if (b < 0) { ERR = 1; return 0; }
    if (b >= 63) return a < 0 ? -1 : 0;
    return a >> b;
}
static inline V sel(const V *s, int base, int size, V i) {
    if (i < 0 || i >= size) { ERR = 1; return 0; }
    return s[base + i];
}
/* Sort `r` rows of `w` slots (slot numbers in `rows`, row by row) by their values. */
static void sort_rows(V *s, const int *rows, int r, int w) {
    V tmp[64 * 64];
    int order[64];
    if (r > 64 || w > 64) return;
    for (int k = 0; k < r; k++) {
        order[k] = k;
        for (int j = 0; j < w; j++) tmp[k * w + j] = s[rows[k * w + j]];
    }
    for (int k = 1; k < r; k++) {
        int x = order[k], m = k - 1;
        while (m >= 0) {
            int y = order[m], c = 0;
            for (int j = 0; j < w && c == 0; j++)
                c = (tmp[y * w + j] > tmp[x * w + j]) - (tmp[y * w + j] < tmp[x * w + j]);
            if (c <= 0) break;
            order[m + 1] = y;
            m--;
        }
        order[m + 1] = x;
    }
    for (int k = 0; k < r; k++)
        for (int j = 0; j < w; j++) s[rows[k * w + j]] = tmp[order[k] * w + j];
}
/* Sort `r` rows of `w` bytes, stored one after the other, by memcmp (insertion sort);
 * perm[q] becomes the original position of the row now at q. */
static void sort_bytes(uint8_t *b, int r, int w, uint8_t *perm) {
    uint8_t x[256];
    for (int k = 0; k < r; k++) perm[k] = (uint8_t)k;
    if (w > 256) return;
    for (int k = 1; k < r; k++) {
        if (memcmp(b + (k - 1) * w, b + k * w, w) <= 0) continue;
        memcpy(x, b + k * w, w);
        uint8_t px = perm[k];
        int m = k - 1;
        while (m >= 0 && memcmp(b + m * w, x, w) > 0) {
            memcpy(b + (m + 1) * w, b + m * w, w);
            perm[m + 1] = perm[m];
            m--;
        }
        memcpy(b + (m + 1) * w, x, w);
        perm[m + 1] = px;
    }
}
