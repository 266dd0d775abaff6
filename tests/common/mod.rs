//! What the integration tests share: a real server and client on loopback
//! (`http`), the Redis to test against (`redis`), and ways to wait on handlers and writers (`wait`).
#![allow(dead_code, unreachable_pub)] // each test binary uses its own part

mod http;
mod redis;
mod wait;

// Each test binary uses its own part.
#[allow(unused_imports)]
pub use self::{http::*, redis::*, wait::*};
