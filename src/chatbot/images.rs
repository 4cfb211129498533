//! Images from a prompt: OpenAI's image-generation API
//! (<https://platform.openai.com/docs/api-reference/images/create>): `POST {base_url}/images/generations`
//! with the model in the body, or Azure's `POST {endpoint}/openai/deployments/{deployment}/images/generations?api-version=…`.
//! The image comes back as `b64_json` (asked for) or as a `url` to fetch (some servers and
//! models ignore the format). Retried like questions.

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use super::provider::{ChatError, Endpoint, Provider, read_answer, transport_error};

/// A generated image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    pub bytes: Vec<u8>,
    pub mimetype: String,
}

/// What the API answered: the image itself, or where to fetch it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageData {
    Bytes(Vec<u8>),
    Url(String),
}

#[derive(Serialize)]
struct Request<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    model: Option<&'a str>,
    prompt: &'a str,
    n: u8,
    size: &'a str,
    response_format: &'static str,
}

#[derive(Deserialize)]
struct Response {
    #[serde(default)]
    data: Vec<Datum>,
}

#[derive(Deserialize)]
struct Datum {
    #[serde(default)]
    b64_json: Option<String>,
    #[serde(default)]
    url: Option<String>,
}

/// Images larger than this are not taken (a misbehaving server must not fill the memory).
const MAX_IMAGE_BYTES: usize = 20 * 1024 * 1024;

impl Provider {
    /// Whether images are set up (`chatbot.image_keywords`).
    pub fn makes_images(&self) -> bool {
        self.image.is_some()
    }

    /// The request for an image of `prompt` (built, not sent).
    pub fn image_request(&self, prompt: &str) -> Result<reqwest::Request, ChatError> {
        let Some((target, size)) = &self.image else {
            return Err(ChatError::Setup("images are off (chatbot.image_keywords)".into()));
        };
        let (text, model) = match &self.endpoint {
            Endpoint::OpenAi { base_url, .. } => (format!("{base_url}/images/generations"), Some(target.as_str())),
            Endpoint::Azure { endpoint, .. } => {
                (format!("{endpoint}/openai/deployments/{target}/images/generations"), None)
            }
        };
        let mut url = url::Url::parse(&text).map_err(|e| ChatError::Setup(format!("the provider URL: {e}")))?;
        if let Endpoint::Azure { api_version, .. } = &self.endpoint {
            url.query_pairs_mut().append_pair("api-version", api_version);
        }
        let body = Request { model, prompt, n: 1, size, response_format: "b64_json" };
        self.authorized(self.http.post(url).json(&body))
            .build()
            .map_err(|e| ChatError::Setup(format!("the request: {e}")))
    }

    /// Make an image of `prompt`, retrying what is worth retrying.
    pub async fn image(&self, prompt: &str) -> Result<Image, ChatError> {
        let data = self.send_with_retries("image", || self.image_request(prompt), read_image).await?;
        self.image_of(data).await
    }

    /// The image's bytes: as given, or fetched from its URL (without the key: it is a
    /// storage link, not the API).
    async fn image_of(&self, data: ImageData) -> Result<Image, ChatError> {
        let bytes = match data {
            ImageData::Bytes(b) => b,
            ImageData::Url(url) => {
                let response = self.http.get(&url).send().await.map_err(|e| transport_error(&e))?;
                let status = response.status().as_u16();
                if !(200..300).contains(&status) {
                    return Err(ChatError::BadAnswer(format!("the image URL answered HTTP {status}")));
                }
                let body = response.bytes().await.map_err(|e| transport_error(&e))?;
                body.to_vec()
            }
        };
        if bytes.len() > MAX_IMAGE_BYTES {
            return Err(ChatError::BadAnswer(format!("the image is larger than {MAX_IMAGE_BYTES} bytes")));
        }
        let mimetype =
            sniff(&bytes).ok_or_else(|| ChatError::BadAnswer("the image is not PNG, JPEG or WebP".into()))?;
        Ok(Image { bytes, mimetype: mimetype.to_owned() })
    }
}

/// Read an image answer of status `status`, or the error it says.
pub fn read_image(status: u16, body: &[u8]) -> Result<ImageData, ChatError> {
    if !(200..300).contains(&status) {
        return Err(read_answer(status, body).err().unwrap_or_else(|| ChatError::BadAnswer(format!("HTTP {status}"))));
    }
    let response: Response =
        serde_json::from_slice(body).map_err(|e| ChatError::BadAnswer(format!("not an image answer: {e}")))?;
    let first = response.data.into_iter().next().ok_or_else(|| ChatError::BadAnswer("no image in data".into()))?;
    match (first.b64_json, first.url) {
        (Some(b64), _) => base64::engine::general_purpose::STANDARD
            .decode(b64.trim())
            .map(ImageData::Bytes)
            .map_err(|e| ChatError::BadAnswer(format!("b64_json: {e}"))),
        (None, Some(url)) => Ok(ImageData::Url(url)),
        (None, None) => Err(ChatError::BadAnswer("no b64_json or url in data[0]".into())),
    }
}

/// The image type by its first bytes.
fn sniff(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if bytes.starts_with(&[0xff, 0xd8, 0xff]) {
        Some("image/jpeg")
    } else if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        Some("image/webp")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chatbot::Settings;

    fn provider(yaml: &str) -> Provider {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let s: Settings = yaml_serde::from_str(yaml).unwrap();
        s.validate().unwrap();
        Provider::new(&s, Some("sk-test-key".into())).unwrap()
    }

    #[test]
    fn openai_and_azure_requests() {
        let p = provider("provider: openai\nopenai: {base_url: 'http://h/v1', model: m}\nimage_keywords: [paint]\n");
        let r = p.image_request("a red fox").unwrap();
        assert_eq!(r.url().as_str(), "http://h/v1/images/generations");
        let body: serde_json::Value = serde_json::from_slice(r.body().unwrap().as_bytes().unwrap()).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"model": "dall-e-3", "prompt": "a red fox", "n": 1, "size": "1024x1024",
                               "response_format": "b64_json"})
        );
        let p = provider(
            "provider: azure\napi_key: k\nazure: {endpoint: 'https://r.openai.azure.com', deployment: chat, \
             api_version: '2024-10-21'}\nimage_keywords: [draw]\nimage_deployment: dalle\n",
        );
        let r = p.image_request("x").unwrap();
        assert_eq!(
            r.url().as_str(),
            "https://r.openai.azure.com/openai/deployments/dalle/images/generations?api-version=2024-10-21"
        );
        assert_eq!(r.headers()["api-key"], "sk-test-key");
        let off = provider("provider: openai\nopenai: {model: m}\n");
        assert!(!off.makes_images() && off.image_request("x").is_err());
    }

    #[test]
    fn answers_as_b64_or_url_and_errors() {
        let png = b"\x89PNG\r\n\x1a\nrest";
        let b64 = base64::engine::general_purpose::STANDARD.encode(png);
        let body = format!(r#"{{"created": 1, "data": [{{"b64_json": "{b64}", "revised_prompt": "p"}}]}}"#);
        assert_eq!(read_image(200, body.as_bytes()).unwrap(), ImageData::Bytes(png.to_vec()));
        assert_eq!(sniff(png), Some("image/png"));
        let body = br#"{"created": 1, "data": [{"url": "https://files.example/i.png"}]}"#;
        assert_eq!(read_image(200, body).unwrap(), ImageData::Url("https://files.example/i.png".into()));
        let refused = br#"{"error": {"message": "Your request was rejected", "type": "invalid_request_error", "code": "content_policy_violation"}}"#;
        let err = read_image(400, refused).unwrap_err();
        assert!(matches!(err, ChatError::Rejected { ref code, .. } if code == "content_policy_violation"), "{err}");
        assert!(read_image(200, br#"{"data": []}"#).is_err());
        assert_eq!(sniff(b"GIF89a"), None);
    }
}
