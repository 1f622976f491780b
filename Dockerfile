# syntax=docker/dockerfile:1
#
# One image for every role of orderflow: the command picks it.
#
#   docker build -t orderflow .
#   docker run -p 8000:8000 -p 9090:9090 orderflow            # serve: api + processor, embedded SQLite
#   docker run -p 8000:8000 orderflow api                     # AWS mode: with SQS_QUEUE_URL, DDB_TABLE, ...
#   docker run -p 9090:9090 orderflow processor
#   docker run orderflow init                                 # create queue, DLQ and table (LocalStack, moto)
#
# No HEALTHCHECK: orchestrators probe /health (liveness) and /ready (readiness)
# themselves, and the final image has no shell or curl to run one.

FROM golang:1.26 AS build
WORKDIR /src
# Modules first, so that a code change does not download them again.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
# What `orderflow version`, the startup log line, orderflow_build_info and
# the OpenAPI document's info.version tell (the build context has no .git
# for the go command to read them from):
#   docker build --build-arg VERSION=$(git describe --tags --always) \
#     --build-arg COMMIT=$(git rev-parse HEAD) \
#     --build-arg DATE=$(git log -1 --format=%cI) -t orderflow .
ARG VERSION=""
ARG COMMIT=""
ARG DATE=""
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=linux go build -trimpath \
      -ldflags="-s -w -X main.version=${VERSION} -X main.commit=${COMMIT} -X main.date=${DATE}" \
      -o /out/orderflow ./cmd/orderflow
# The embedded mode's SQLite file lives in /data, owned by the nonroot user.
RUN mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/orderflow /orderflow
COPY --from=build --chown=65532:65532 /out/data /data
ENV ORDERFLOW_DB=/data/orderflow.db
VOLUME ["/data"]
USER 65532:65532
EXPOSE 8000 9090
ENTRYPOINT ["/orderflow"]
CMD ["serve"]
