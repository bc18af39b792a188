#ifndef VDB_RESOLVER_H
#define VDB_RESOLVER_H
// ifunc resolvers run while the dynamic linker relocates the binary, before a sanitizer's
// runtime exists: they (and what they call) must carry no instrumentation.
#if defined(__has_attribute)
#if __has_attribute(disable_sanitizer_instrumentation)
#define VDB_RESOLVER __attribute__((disable_sanitizer_instrumentation))
#endif
#endif
#ifndef VDB_RESOLVER
#define VDB_RESOLVER
#endif
#endif
