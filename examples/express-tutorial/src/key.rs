//! The cookie signing key, kept in a file so that cookies stay valid across restarts.

use std::io::Write as _;
use std::path::Path;

/// The signing key: read from `path`, or made of 384 random bits and written there (readable
/// by the owner only) the first time. Whitespace around the key (a trailing newline) is not
/// part of it.
///
/// # Errors
///
/// An I/O error if the file cannot be read or created, or `InvalidData` if it holds fewer than
/// [`session_tower::MIN_KEY_LEN`] bytes.
pub fn load_or_create_key(path: &Path) -> std::io::Result<Vec<u8>> {
    match std::fs::read(path) {
        Ok(key) => {
            let key = key.trim_ascii().to_vec();
            if key.len() < session_tower::MIN_KEY_LEN {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!(
                        "the key file {} holds {} bytes; at least {} are needed",
                        path.display(),
                        key.len(),
                        session_tower::MIN_KEY_LEN
                    ),
                ));
            }
            Ok(key)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut random = [0u8; 48];
            getrandom::fill(&mut random).map_err(std::io::Error::other)?;
            let key: String = random.iter().map(|b| format!("{b:02x}")).collect();
            let mut options = std::fs::OpenOptions::new();
            // create_new: two instances starting at once never overwrite each other's key.
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let mut file = options.open(path)?;
            file.write_all(key.as_bytes())?;
            file.write_all(b"\n")?;
            Ok(key.into_bytes())
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::load_or_create_key;

    #[test]
    fn key_file_is_created_private_and_reused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("key");
        let key = load_or_create_key(&path).expect("created");
        assert_eq!(key.len(), 96, "384 bits, hex-encoded");
        assert_eq!(load_or_create_key(&path).expect("read back"), key);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path)
                .expect("metadata")
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "only the owner may read the key: {mode:o}");
        }
    }

    #[test]
    fn key_file_shorter_than_32_bytes_is_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("key");
        std::fs::write(&path, "too short\n").expect("write");
        let error = load_or_create_key(&path).expect_err("short key refused");
        assert_eq!(error.kind(), std::io::ErrorKind::InvalidData);
        assert!(error.to_string().contains("holds 9 bytes"), "{error}");
    }
}
