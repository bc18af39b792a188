public import AsyncHTTPClient
import Logging

extension HTTPClient {
    /// The client nodes talk to each other (and etcd) through. Connecting gives up after half a
    /// second: a node that is down refuses at once, and a write forwarded to it must turn into a
    /// 503 quickly rather than wait out the request's deadline in connection retries.
    /// Lives as long as the process.
    public static let cluster: HTTPClient = {
        var configuration = HTTPClient.Configuration()
        configuration.timeout.connect = .milliseconds(500)
        configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = 16
        return HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration, backgroundActivityLogger: Logger(label: "vdb-cluster-http"))
    }()
}
