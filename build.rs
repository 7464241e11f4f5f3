//! Compiles tollgate's own gRPC API (`proto/tollgate/v1/*.proto`) with `protox`, a pure-Rust
//! protobuf compiler, so building tollgate never needs a system `protoc`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = [
        "proto/tollgate/v1/tasks.proto",
        "proto/tollgate/v1/budgets.proto",
    ];
    for proto in protos {
        println!("cargo:rerun-if-changed={proto}");
    }
    let fds = protox::compile(protos, ["proto"])?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(fds)?;
    Ok(())
}
