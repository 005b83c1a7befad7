//! What the charger maker's FAQ defines, once, for the pile and the central system alike: the
//! vendor keys (3.1-3.7, 3.12-3.14, 3.17), the VendorWebsocketSettings format (3.3), the bits of
//! OEM_FaultMask (3.12) and OEM_FunctionMask (3.13) with their meanings, the vendorErrorCode
//! table (3.6), the OEM_NetState JSON (3.14) and the firmware images' names (3.10, 3.17). No I/O.

pub mod error_codes;
pub mod firmware;
mod insight;
pub mod keys;
pub mod masks;
mod net_state;
mod settings;

pub use insight::parse_insight;
pub use masks::{
    parse_mask, Mask, MaskBit, FAULT_MASK, FAULT_MASK_BITS, FUNCTION_MASK, FUNCTION_MASK_BITS,
};
pub use net_state::NetState;
pub use settings::{validate_name, InvalidSetting, WebsocketSettings, MAX_NAME_LEN};
