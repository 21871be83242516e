//! The tutorial app's `POST /login` body: any bytes never panic, every refusal has the status
//! the app documents (400 malformed, 422 another shape, 401 another account), and only the one
//! account logs in.
#![no_main]

use express_tutorial::Credentials;
use express_tutorial::fuzzing::login;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let account = Credentials::default();
    let (status, username) = login(&account, data);
    match status.as_u16() {
        200 => assert_eq!(username.as_deref(), Some(Credentials::TUTORIAL_USERNAME)),
        400 | 401 | 422 => assert_eq!(username, None),
        other => panic!("unexpected status {other}"),
    }
});
