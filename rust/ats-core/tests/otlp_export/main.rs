//! OTLP export transport and sink against in-test collectors: scripted
//! HTTP/1.1 (plain and TLS/mTLS) and an h2 gRPC server.

mod grpc;
mod http;
mod support;
mod tls;
mod pipeline;
