// VDBKit is the library the executables import: every layer of the engine, re-exported, so a
// tool writes `import VDBKit` and sees one API. The layers themselves are separate targets
// (see ARCHITECTURE.md); code inside VDBKit imports only the layers it needs.
@_exported public import VDBCore
@_exported public import VDBKernels
@_exported public import VDBStorage
@_exported public import VDBIndex
@_exported public import VDBCatalog
@_exported public import VDBIngest
@_exported public import VDBEngine
