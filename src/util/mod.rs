//! Private pieces the public modules share.

pub(crate) mod answer;
pub(crate) mod early;
pub(crate) mod frame_buffer;
pub(crate) mod headers;
pub(crate) mod position;
pub(crate) mod sync;
