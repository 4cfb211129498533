#![no_main]
//! See `ucbridge_fuzz::xmpp_stanza` (fuzz/src/lib.rs) for what this feeds and checks.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| ucbridge_fuzz::xmpp_stanza(data));
