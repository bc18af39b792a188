import HTTPTypes
import NIOCore
import NIOHTTPTypes

/// A connection's channel handler, after HTTP decoding and before Hummingbird: it takes the
/// requests ``DirectSearch`` accepts and answers them on the event loop, and passes every other
/// request through untouched, part by part.
///
/// Answers leave in the order their requests came (HTTP/1.1 pipelining): while the router
/// still owes an answer on this connection, searches go to the router too, behind it. The
/// router's answers are counted as they are written (their `end` part).
final class DirectSearchHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    private enum State {
        /// Between requests.
        case idle
        /// Reading a search's body, to answer it here (or, failing that, to pass it on whole).
        case collecting(HTTPRequest, library: String, body: ByteBuffer?)
        /// Passing a request's parts on to the router as they come.
        case passing
    }

    private let search: DirectSearch
    private var state = State.idle
    /// Requests passed to the router whose answers it has not finished writing.
    private var routerAnswersOwed = 0
    /// A graceful shutdown's request to close, held while a search is read so that it is
    /// answered first (the handlers behind this one never saw it and would close at once).
    private var heldQuiesce: Any?

    init(search: DirectSearch) {
        self.search = search
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        switch (state, part) {
        case (.idle, .head(let head)):
            if routerAnswersOwed == 0, let library = search.library(accepting: head) {
                state = .collecting(head, library: library, body: nil)
            } else {
                routerAnswersOwed += 1
                state = .passing
                context.fireChannelRead(data)
            }
        case (.collecting(let head, let library, var body), .body(let bytes)):
            state = .idle  // lets `body` be appended to without a copy
            if body == nil { body = bytes } else { body!.writeImmutableBuffer(bytes) }
            if body!.readableBytes > search.maxBodySize {
                passOn(head, body, context: context)
                state = .passing
                releaseQuiesce(context: context)
            } else {
                state = .collecting(head, library: library, body: body)
            }
        case (.collecting(let head, let library, let body), .end(let trailers)):
            state = .idle
            let bytes = body ?? context.channel.allocator.buffer(capacity: 0)
            if trailers == nil, let answer = search.answer(head, library: library, body: bytes) {
                context.write(wrapOutboundOut(.head(answer.head)), promise: nil)
                context.write(wrapOutboundOut(.body(context.channel.allocator.buffer(bytes: answer.body))), promise: nil)
                context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
                search.observe(answer, of: head)
            } else {
                passOn(head, body, context: context)
                context.fireChannelRead(wrapInboundOut(.end(trailers)))
            }
            releaseQuiesce(context: context)
        case (.passing, .end):
            state = .idle
            context.fireChannelRead(data)
        default:
            // The rest of a passed request, or parts out of order (the router's to refuse).
            context.fireChannelRead(data)
        }
    }

    /// Hands a request read so far to the router.
    private func passOn(_ head: HTTPRequest, _ body: ByteBuffer?, context: ChannelHandlerContext) {
        routerAnswersOwed += 1
        context.fireChannelRead(wrapInboundOut(.head(head)))
        if let body { context.fireChannelRead(wrapInboundOut(.body(body))) }
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data) { routerAnswersOwed = max(0, routerAnswersOwed - 1) }
        context.write(data, promise: promise)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ChannelShouldQuiesceEvent, case .collecting = state {
            heldQuiesce = event
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    private func releaseQuiesce(context: ChannelHandlerContext) {
        guard let event = heldQuiesce else { return }
        heldQuiesce = nil
        context.fireUserInboundEventTriggered(event)
    }
}
