import VDBKit

// Placeholder: the REST server arrives with the vdb-serve issue (Hummingbird 2, WAL, replication).
// Until then it says so and exits with EX_SOFTWARE, rather than pretending to serve.
printError("vdb-serve: not implemented yet; the REST server is tracked in the vdb-serve issue. Use vdb-build and vdb-query.")
exit(ExitStatus.software)

#if canImport(Glibc)
import Glibc
#endif
