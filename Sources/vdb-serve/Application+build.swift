import AsyncHTTPClient
import Foundation
import Hummingbird
import HummingbirdAuth
import Logging
import Prometheus
import ServiceLifecycle
import UnixSignals
import VDBCluster
import VDBKit

/// How the server runs.
struct ServeConfiguration: Sendable {
    var dataDirectory: String
    var host: String
    var port: Int
    var policy: FsyncPolicy
    /// Where to write the bound port once listening (for `--port 0`).
    var portFile: String?
}

/// Cluster mode: the node, and the client its forwarded requests go through.
struct ClusterContext: Sendable {
    var node: ClusterNode
    var http: HTTPClient
}

/// What the routes are run with beyond the libraries: limits, metrics, keys.
struct RouterOptions: Sendable {
    var limits = RequestLimits()
    /// Where `GET /metrics` reads from (the process's swift-metrics backend writes into it).
    var metrics = PrometheusCollectorRegistry()
    /// API keys to check; nil: every request is let in.
    var keys: APIKeyStore? = nil
    /// Whether each request gets a span (``TraceExport``).
    var tracing = false
    /// Whether plain searches are answered on the event loop, below the router (``DirectSearch``).
    var directSearch = true
    /// Searches in flight, over the router's and the direct path's alike.
    let searches = InFlightCounter()
    /// Request counts and times per route, over both paths alike.
    let requestMetrics = RequestMetrics()
}

/// The routes, over a library service. Tests call this without a process or a socket.
///
/// Middleware, outermost first: the request's span when tracing (outside the next, so it
/// records the request id); request id, metrics and access log; no-store; errors as
/// problem bodies; 405 for a known path's other methods; API keys; query parameters as the
/// OpenAPI document declares them; admission (bounds and deadlines); then, in cluster mode,
/// forwarding to leaders and read consistency.
func buildRouter(service: LibraryService, cluster: ClusterContext? = nil, options: RouterOptions = RouterOptions()) -> Router<VDBRequestContext> {
    let router = Router(context: VDBRequestContext.self)
    let routes = RouteTable()
    if options.tracing { router.add(middleware: TraceExport.middleware()) }
    router.add(middleware: RequestObservationMiddleware(metrics: options.requestMetrics))
    router.add(middleware: NoStoreMiddleware())
    router.add(middleware: ProblemDetailsMiddleware())
    router.add(middleware: MethodNotAllowedMiddleware(routes: routes))
    if let keys = options.keys {
        router.add(middleware: APIKeyAuthenticator(store: keys))
        router.add(middleware: APIKeyRoleMiddleware())
    }
    router.add(middleware: QueryParametersMiddleware(rules: QueryParameterRules(document: OpenAPIDocument.bytes)))
    router.add(middleware: AdmissionMiddleware(limits: options.limits, searches: options.searches))
    if let cluster {
        router.add(middleware: LeaderForwardingMiddleware(nodeID: cluster.node.nodeID, http: cluster.http))
        router.add(middleware: ReadConsistencyMiddleware(cluster: cluster.node, service: service, http: cluster.http))
        ClusterController(cluster: cluster.node).addRoutes(to: router)
    } else {
        router.get("v1/cluster") { _, _ -> Response in
            throw ProblemDetails(status: .notFound, code: "not-clustered", detail: "this node runs alone (started without --cluster)")
        }
    }
    router.get("healthz") { _, _ in Health(status: "ok", libraries: service.libraryCount) }
    router.get("openapi.json") { _, _ -> Response in
        Response(
            status: .ok, headers: [.contentType: "application/json"],
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: OpenAPIDocument.bytes)))
    }
    let libraries = router.group("v1/libraries")
    LibrariesController(service: service, cluster: cluster?.node).addRoutes(to: libraries)
    DocumentsController(service: service).addRoutes(to: libraries.group(":library/documents"))
    ChunksController(service: service).addRoutes(to: libraries.group(":library/documents/:document/chunks"))
    SearchController(service: service).addRoutes(to: libraries.group(":library/search"))
    LifecycleController(service: service).addRoutes(to: libraries)
    JobsController(service: service).addRoutes(to: router.group("v1/jobs"))
    MetricsController(service: service, cluster: cluster?.node, registry: options.metrics).addRoutes(to: router)
    routes.load(router.routes)
    return router
}

/// The application: the router, bound to host and port, writing the port file once listening,
/// with the libraries' background work as a service beside it.
func buildApplication(
    _ configuration: ServeConfiguration, service: LibraryService, cluster: ClusterContext? = nil, options: RouterOptions = RouterOptions(),
    extraServices: [any Service] = [], logger: Logger
) -> some ApplicationProtocol {
    let portFile = configuration.portFile
    var services: [any Service] = [LibraryMaintenanceService(libraries: service)] + extraServices
    if let cluster { services.append(ClusterService(node: cluster.node)) }
    if let keys = options.keys { services.append(KeyReloadService(keys: keys, logger: logger)) }
    let serverName = "vdb-serve"
    // Plain searches below the router (``DirectSearch``), unless a request needs what only the
    // router's path has: a span per request, or a cluster's forwarding and read consistency.
    // A middleware added to `buildRouter` that must apply to searches needs its counterpart in
    // `DirectSearch` too, or a condition there that sends such requests to the router.
    let direct: DirectSearch? =
        options.directSearch && !options.tracing && cluster == nil
        ? DirectSearch(
            service: service, keys: options.keys, limits: options.limits, searches: options.searches, metrics: options.requestMetrics,
            logger: logger, serverName: serverName, maxBodySize: VDBRequestContext.maxUploadSize)
        : nil
    return Application(
        router: buildRouter(service: service, cluster: cluster, options: options),
        server: .http1(configuration: .init(additionalChannelHandlers: direct.map { [DirectSearchHandler(search: $0)] } ?? [])),
        configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: serverName),
        services: services,
        onServerRunning: { channel in
            guard let portFile, let port = channel.localAddress?.port else { return }
            // Written to a temporary name and renamed, so a reader never sees half a number.
            try? Data("\(port)\n".utf8).write(to: URL(fileURLWithPath: portFile), options: .atomic)
        },
        logger: logger)
}

/// The OpenAPI document, kept in the repository as `Sources/vdb-serve/openapi.json`.
enum OpenAPIDocument {
    static let bytes: [UInt8] = {
        guard let url = Bundle.module.url(forResource: "openapi", withExtension: "json"), let data = try? Data(contentsOf: url) else {
            return Array("{}".utf8)
        }
        return Array(data)
    }()
}

/// The libraries' background work (flushes, index builds, adopting versions `vdb-build`
/// publishes) as a ServiceLifecycle service: it stops on graceful shutdown, finishing the
/// flush or build under way rather than tearing it.
struct LibraryMaintenanceService: Service {
    let libraries: LibraryService

    func run() async throws {
        await cancelWhenGracefulShutdown {
            await libraries.runMaintenance()
        }
    }
}

/// Cluster mode's work beside the server (lease renewals, following etcd, elections). On
/// graceful shutdown the node gives up its shards at once.
struct ClusterService: Service {
    let node: ClusterNode

    func run() async throws {
        await cancelWhenGracefulShutdown {
            await node.run()
        }
    }
}

/// Reloads the API keys file on SIGHUP; a file that no longer reads leaves the keys in use.
struct KeyReloadService: Service {
    let keys: APIKeyStore
    let logger: Logger

    func run() async throws {
        for await _ in await UnixSignalsSequence(trapping: .sighup).cancelOnGracefulShutdown() {
            do {
                try keys.reload()
                logger.notice("reloaded the API keys", metadata: ["keys": "\(keys.count)", "file": "\(keys.path)"])
            } catch {
                logger.error("kept the API keys in use: the file does not load", metadata: ["error": "\(error)"])
            }
        }
    }
}
