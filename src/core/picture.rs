//! Pictures carried between the networks (avatars of people and rooms): which image types are
//! taken, known by their first bytes rather than by what the sender claims, and how large.

/// Largest avatar carried either way (bytes).
pub const MAX_AVATAR: usize = 1024 * 1024;

/// The image type by its first bytes: PNG, JPEG, GIF or WebP (what every client shows).
pub fn image_type(bytes: &[u8]) -> Option<&'static str> {
    match bytes {
        [0x89, b'P', b'N', b'G', b'\r', b'\n', 0x1a, b'\n', ..] => Some("image/png"),
        [0xff, 0xd8, 0xff, ..] => Some("image/jpeg"),
        [b'G', b'I', b'F', b'8', b'7' | b'9', b'a', ..] => Some("image/gif"),
        [b'R', b'I', b'F', b'F', _, _, _, _, b'W', b'E', b'B', b'P', ..] => Some("image/webp"),
        _ => None,
    }
}

/// Why a picture someone sent is not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadPicture {
    #[error("the picture is empty")]
    Empty,
    #[error("the picture has {0} bytes; at most {MAX_AVATAR} are taken")]
    TooLarge(usize),
    #[error("the picture is not a PNG, JPEG, GIF or WebP image")]
    NotAnImage,
}

/// An avatar as received: its type as its bytes show it, if it may be carried.
pub fn check_avatar(bytes: &[u8]) -> Result<&'static str, BadPicture> {
    if bytes.is_empty() {
        return Err(BadPicture::Empty);
    }
    if bytes.len() > MAX_AVATAR {
        return Err(BadPicture::TooLarge(bytes.len()));
    }
    image_type(bytes).ok_or(BadPicture::NotAnImage)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_are_known_by_their_bytes_and_bounded() {
        assert_eq!(check_avatar(b"\x89PNG\r\n\x1a\n...."), Ok("image/png"));
        assert_eq!(check_avatar(&[0xff, 0xd8, 0xff, 0xe0]), Ok("image/jpeg"));
        assert_eq!(check_avatar(b"GIF89a.."), Ok("image/gif"));
        assert_eq!(check_avatar(b"RIFF\0\0\0\0WEBPVP8 "), Ok("image/webp"));
        assert_eq!(check_avatar(b""), Err(BadPicture::Empty));
        assert_eq!(check_avatar(b"<svg xmlns='http://www.w3.org/2000/svg'/>"), Err(BadPicture::NotAnImage));
        assert_eq!(check_avatar(b"\x89PNG"), Err(BadPicture::NotAnImage));
        let mut big = b"\x89PNG\r\n\x1a\n".to_vec();
        big.resize(MAX_AVATAR + 1, 0);
        assert_eq!(check_avatar(&big), Err(BadPicture::TooLarge(MAX_AVATAR + 1)));
        big.truncate(MAX_AVATAR);
        assert_eq!(check_avatar(&big), Ok("image/png"));
    }
}
