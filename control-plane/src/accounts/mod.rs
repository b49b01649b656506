//! What accounts need besides their stored records (`store::accounts`):
//! password hashing and strength ([`passwords`]) and the limits on
//! guessing them ([`login_limits`]). Both are free of HTTP; the routes
//! that use them are `api::account` and `api::users`.

pub mod login_limits;
pub mod passwords;
