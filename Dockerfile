# vdb-serve in a container: built with the Swift toolchain image, run on a slim Debian as a
# non-root user. The data directory is a volume; the port is 8080.
#   docker build -t vdb .
#   docker run -p 8080:8080 -v vdb-data:/var/lib/vdb vdb
FROM swift:6.2-bookworm AS build
RUN apt-get update -qq \
    && apt-get install -y -qq --no-install-recommends libhdf5-dev libopenblas-dev libzstd-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Dependencies first, so a source change does not fetch them again.
COPY Package.swift ./
RUN swift package resolve
COPY Sources ./Sources
COPY Tests ./Tests
RUN swift build -c release --product vdb-serve --static-swift-stdlib \
    && swift build -c release --product vdb-build --static-swift-stdlib \
    && mkdir -p /out \
    && cp "$(swift build -c release --show-bin-path)/vdb-serve" "$(swift build -c release --show-bin-path)/vdb-build" /out/ \
    && cp -r "$(swift build -c release --show-bin-path)/vdb_vdb-serve.resources" /out/

FROM debian:bookworm-slim
RUN apt-get update -qq \
    && apt-get install -y -qq --no-install-recommends libhdf5-103-1 libopenblas0-pthread libzstd1 curl ca-certificates tzdata \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /var/lib/vdb --create-home vdb
COPY --from=build /out/ /usr/local/bin/
USER 10001
WORKDIR /var/lib/vdb
VOLUME ["/var/lib/vdb"]
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 CMD ["curl", "-fsS", "http://127.0.0.1:8080/healthz"]
ENTRYPOINT ["vdb-serve"]
CMD ["--data-dir", "/var/lib/vdb", "--host", "0.0.0.0", "--port", "8080"]
