import Hummingbird
import VDBKit

/// `/v1/libraries/{library}/flush|compact|index|rollback`: publishing work on a library.
/// Index builds and compactions run as jobs (202 with `Location: /v1/jobs/{id}`); a flush and
/// a rollback answer when done.
struct LifecycleController {
    let service: LibraryService

    func addRoutes(to group: RouterGroup<VDBRequestContext>) {
        group.post(":library/flush", use: flush)
        group.post(":library/compact", use: compact)
        group.post(":library/index", use: index)
        group.post(":library/rollback", use: rollback)
    }

    /// Writes every unflushed row into segments now (a new version), so offline tools may
    /// replace or append to the library. In a cluster, the node flushes the shards it leads
    /// (their followers install the result).
    @Sendable func flush(request: Request, context: VDBRequestContext) async throws -> JSONBody<LibraryInfo> {
        let name = try context.parameters.require("library")
        _ = try service.library(name)
        _ = try await request.optionalJSON(EmptyRequest.self, context: context)
        try await service.flush(name)
        return JSONBody(try await service.info(name))
    }

    @Sendable func compact(request: Request, context: VDBRequestContext) async throws -> EditedResponse<JSONBody<JobInfo>> {
        let name = try context.parameters.require("library")
        _ = try service.library(name)
        let body = try await request.optionalJSON(CompactRequest.self, context: context) ?? CompactRequest()
        let job = try service.startCompactionJob(name, policy: try body.policy(over: service.compaction))
        return Self.accepted(job)
    }

    @Sendable func index(request: Request, context: VDBRequestContext) async throws -> EditedResponse<JSONBody<JobInfo>> {
        let name = try context.parameters.require("library")
        _ = try service.library(name)
        let body = try await request.json(IndexJobRequest.self, context: context)
        let job = try service.startIndexJob(name, settings: try body.settings())
        return Self.accepted(job)
    }

    @Sendable func rollback(request: Request, context: VDBRequestContext) async throws -> JSONBody<LibraryInfo> {
        let name = try context.parameters.require("library")
        _ = try service.library(name)
        let body = try await request.optionalJSON(RollbackRequest.self, context: context) ?? RollbackRequest()
        if let version = body.version, version < 1 {
            throw ProblemDetails(status: .unprocessableContent, code: "invalid-field", detail: "field 'version': a version is at least 1", pointer: "/version")
        }
        return JSONBody(try await service.rollback(name, to: body.version.map(Epoch.init)))
    }

    static func accepted(_ job: JobInfo) -> EditedResponse<JSONBody<JobInfo>> {
        EditedResponse(status: .accepted, headers: [.location: "/v1/jobs/\(job.id)"], response: JSONBody(job))
    }
}

/// `/v1/jobs`: the state of index builds and compactions; `POST /v1/jobs/{job}/cancel` cancels
/// one (a custom method, not `DELETE`: the job stays readable, so clients see how it ended).
struct JobsController {
    let service: LibraryService

    func addRoutes(to group: RouterGroup<VDBRequestContext>) {
        group.get(use: list)
        group.get(":job", use: get)
        group.post(":job/cancel", use: cancel)
    }

    @Sendable func list(request: Request, context: VDBRequestContext) async throws -> Page<JobInfo> {
        Page(items: service.jobs.list(), nextCursor: nil)
    }

    @Sendable func get(request: Request, context: VDBRequestContext) async throws -> JSONBody<JobInfo> {
        let id = try context.parameters.require("job")
        guard let job = service.jobs.job(id) else { throw StorageError(.notFound, "job '\(id)' does not exist") }
        return JSONBody(job)
    }

    @Sendable func cancel(request: Request, context: VDBRequestContext) async throws -> JSONBody<JobInfo> {
        let id = try context.parameters.require("job")
        _ = try await request.optionalJSON(EmptyRequest.self, context: context)
        guard let job = service.jobs.cancel(id) else { throw StorageError(.notFound, "job '\(id)' does not exist") }
        return JSONBody(job)
    }
}
