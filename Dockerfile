# syntax=docker/dockerfile:1
# The purchase-guard image: the binary only, on a distroless base, as a non-root user.
#   docker build -t purchase-guard:dev .

FROM rust:1.95-bookworm AS build
WORKDIR /src
# Dependencies first, so that source changes do not rebuild them.
COPY Cargo.toml Cargo.lock ./
COPY crates crates
RUN mkdir -p src benches && echo 'fn main() {}' > src/main.rs && touch src/lib.rs \
    && for b in controller admission; do echo 'fn main() {}' > benches/$b.rs; done \
    && cargo build --release --locked --no-default-features --bin purchase-guard \
    && rm -rf src benches
# Without the default `sandbox` feature: the image carries neither the sandbox nor the examples.
COPY src src
COPY benches benches
RUN touch src/main.rs src/lib.rs \
    && cargo build --release --locked --no-default-features --bin purchase-guard \
    && strip target/release/purchase-guard

# glibc and libgcc only (the binary links them dynamically); no shell, no package manager.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/purchase-guard /usr/local/bin/purchase-guard
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/purchase-guard"]
CMD ["run"]
