# drbot: one static binary on a distroless base. SQLite is pure Go (no cgo).
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /drbot ./cmd/drbot

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /drbot /drbot
WORKDIR /data
ENV DRBOT_CONFIG=/etc/drbot/drbot.yaml DRBOT_DB=/data/drbot.db
ENTRYPOINT ["/drbot"]
CMD ["serve"]
