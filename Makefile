# nsguard — `make test` is the one test command (README, CI).
GO ?= go

.PHONY: test deps fmt vet tidy staticcheck build bench
test: deps fmt vet tidy staticcheck
	$(GO) test -race -timeout 20m ./...

deps:
	@bash scripts/deps.sh

fmt:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

# go.mod and go.sum say exactly what the code imports.
tidy:
	$(GO) mod tidy -diff

# Pinned in go.mod's tool directive: only the module proxy is needed.
staticcheck:
	$(GO) tool staticcheck ./...

build:
	CGO_ENABLED=0 $(GO) build -trimpath -o nsguard ./cmd/nsguard

bench:
	bash bench/run.sh bind
