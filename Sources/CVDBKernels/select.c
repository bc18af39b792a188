#include "CVDBKernels.h"

// Quickselect (Hoare's FIND) with a median-of-three pivot: expected linear time, no
// allocation. A bounded heap does the same job in O(n log k) with a data-dependent branch per
// level; at k = 100 over a few thousand PQ scores this is several times faster.
float vdb_select_kth(float *values, size_t n, size_t k) {
    size_t lo = 0, hi = n - 1, target = k - 1;
    while (lo < hi) {
        const size_t mid = lo + (hi - lo) / 2;
        float a = values[lo], b = values[mid], c = values[hi];
        const float pivot = a < b ? (b < c ? b : (a < c ? c : a)) : (a < c ? a : (b < c ? c : b));
        size_t i = lo, j = hi;
        while (i <= j) {
            while (values[i] < pivot) i++;
            while (values[j] > pivot) j--;
            if (i <= j) {
                const float t = values[i];
                values[i] = values[j];
                values[j] = t;
                i++;
                if (j == 0) break;
                j--;
            }
        }
        // [lo, j] ≤ pivot ≤ [i, hi], and everything strictly between equals the pivot.
        if (target <= j) hi = j;
        else if (target >= i) lo = i;
        else return pivot;
    }
    return values[target];
}
