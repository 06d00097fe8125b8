/* Kernels on integer indices, instantiated once (not per dtype). */

/* Groups embedding tokens by id (stable counting sort, one work-item: O(m + k)):
 * grp[0..k] = start of each id's run, grp[k + 1 + e] = token index, ascending within a run.
 * Ids outside [0, k) are left out. Serial on purpose: the order, hence every sum that
 * follows it, is the same on every run and device. */
__kernel void emb_sort(__global const int *ids, ulong oid, int m, int k, __global int *grp) {
    if (get_global_id(0) != 0) return;
    __global int *order = grp + k + 1;
    for (int r = 0; r <= k; r++)
        grp[r] = 0;
    for (int i = 0; i < m; i++) {
        int id = ids[oid + i];
        if (id >= 0 && id < k) grp[id + 1]++;
    }
    for (int r = 0; r < k; r++)
        grp[r + 1] += grp[r];
    for (int i = 0; i < m; i++) { /* grp[id] counts up to the next run's start */
        int id = ids[oid + i];
        if (id >= 0 && id < k) order[grp[id]++] = i;
    }
    for (int r = k; r > 0; r--)
        grp[r] = grp[r - 1];
    grp[0] = 0;
}

/* Stage 2 of NONFINITE_COUNT (one work-item): count = sum(part) + (acc ? count : 0). */
__kernel void nonfinite_final(__global const int *part, int nparts, __global int *count, ulong oc,
                              int acc) {
    if (get_global_id(0) != 0) return;
    int s = acc ? count[oc] : 0;
    for (int g = 0; g < nparts; g++)
        s += part[g];
    count[oc] = s;
}
