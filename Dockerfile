# syntax=docker/dockerfile:1
# The purchase-guard image: the binary only, on a distroless base, as a non-root user.
#   docker build -t purchase-guard:dev .

FROM rust:1.95-bookworm AS build
WORKDIR /src
# Dependencies first, so that source changes do not rebuild them. The benchmarks are targets
# of the manifest: cargo reads every target's file before it builds anything.
COPY Cargo.toml Cargo.lock ./
COPY crates crates
COPY benches benches
RUN mkdir -p src && echo 'fn main() {}' > src/main.rs && touch src/lib.rs \
    && cargo build --profile image --locked --no-default-features --bin purchase-guard \
    && rm -rf src
# Without the default `sandbox` feature: the image carries neither the sandbox nor the examples.
# The `image` profile (Cargo.toml) optimises across crates.
COPY src src
RUN touch src/main.rs src/lib.rs \
    && cargo build --profile image --locked --no-default-features --bin purchase-guard \
    && strip target/image/purchase-guard

# glibc and libgcc only (the binary links them dynamically); no shell, no package manager.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/image/purchase-guard /usr/local/bin/purchase-guard
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/purchase-guard"]
CMD ["run"]
