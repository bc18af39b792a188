#ifndef VDB_THREAD_H
#define VDB_THREAD_H
// Per-thread scheduling priority. Linux schedules threads, so `nice` applies to one thread
// when given its thread id, which Swift's Glibc module does not expose (gettid).

/// Raises the calling thread's nice value by `increment` (capped at 19). Returns 0, or -1
/// with errno set.
int vdb_thread_lower_priority(int increment);
/// The calling thread's nice value.
int vdb_thread_niceness(void);

#endif
