//! `multipart/form-data` bodies for upload tests, built by hand so a test can send exactly the
//! parts (and the broken ones) it means to.

/// One part of a form.
#[derive(Debug, Clone)]
pub struct Part<'a> {
    /// The form field name.
    pub name: &'a str,
    /// `filename` of a file part.
    pub filename: Option<&'a str>,
    /// The part's own Content-Type.
    pub content_type: Option<&'a str>,
    pub data: &'a [u8],
}

impl<'a> Part<'a> {
    /// A file part.
    pub fn file(filename: &'a str, content_type: &'a str, data: &'a [u8]) -> Self {
        Self {
            name: "file",
            filename: Some(filename),
            content_type: Some(content_type),
            data,
        }
    }

    /// A plain text field.
    pub fn text(name: &'a str, value: &'a str) -> Self {
        Self {
            name,
            filename: None,
            content_type: None,
            data: value.as_bytes(),
        }
    }
}

/// The request's Content-Type and body for `parts`.
pub fn form(parts: &[Part<'_>]) -> (String, Vec<u8>) {
    let boundary = "omnistream-test-boundary-7d1f";
    let mut body = Vec::new();
    for part in parts {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        let mut disposition = format!("Content-Disposition: form-data; name=\"{}\"", part.name);
        if let Some(filename) = part.filename {
            disposition.push_str(&format!("; filename=\"{filename}\""));
        }
        body.extend_from_slice(disposition.as_bytes());
        body.extend_from_slice(b"\r\n");
        if let Some(content_type) = part.content_type {
            body.extend_from_slice(format!("Content-Type: {content_type}\r\n").as_bytes());
        }
        body.extend_from_slice(b"\r\n");
        body.extend_from_slice(part.data);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}
