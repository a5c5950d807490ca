//! Keys and results computed with the `openssl` CLI, shared by the crypto and RSA backend tests:
//! a premaster encrypted by `openssl pkeyutl -encrypt -pkeyopt rsa_padding_mode:none` from the
//! byte-reversed premaster 0x30..0x5F (hex, little-endian), and `openssl dgst -sha1 -sign`
//! signatures of `SIGNED_MESSAGE`.

/// What the `OPENSSL_SHA1_SIGNATURE_*` vectors sign.
pub const SIGNED_MESSAGE: &[u8] = b"rdpele CAL tbsCertificate stand-in";

pub const OPENSSL_ENCRYPTED_PREMASTER_LE: &str = "\
951a4b56fa731d63729f100c14592a557120052fd7d46f901f914277399bf631bf8e25b0305918ae4a51a186c22971a7\
1ecd5c209b38d0fa15ae6ee84ace90b170636bafa6ca288df69a7f1910eaedb030cc27fb4a9576bfa908004aad6b570f\
0d0ebc92bcb9c9347e76a65ca92dde2cc44499b06f61526b92a0dcddad4749cdd1232e7e4a939be5306bdb1888c12941\
ac915a35368ba4299d470cd973b9e512397621038447103cb541f32574385e4b3cbf5e649ccd6d1ff361f771d2f45926\
98be5dac23e0beed844ce21273149dcaa2807c9f1509653941544035f0caa03ca85b958536b5c11dc243e898aa72cb45\
131a6a3ed557533c9ef23af5f2c94eab";

pub const OPENSSL_SHA1_SIGNATURE_2048: &str = "\
9f9cd198aa5bf2bb1c5e8aaf3354b6d4ae9a7fac381e3c1563c8574a3eb066708ab0fd327e243e45c0dd9dc80eb6ebcf\
ae2a49e6eace47c9d846c946f86f89a821c749074dd609d0254ceb31b88b275434e553406f4fed7170b425e6779dcf24\
380423a26aceb95a275f5d8375a8c72a50b90c285bf87de306a627de19069018e18e4bdc3afc7b5d704b1a03556b0332\
4a817e5ba5e5c61b784c5bd9f23853bd280fcebec7f8a6e1bc160bdb17e85da81c9c52483a8fd1cf939f5db721860057\
c3992971886b3773662a7a5e61a594c78d6f08b03a632760bb3220e1c87122fa07fab61e2c4249096286ee187e0df6ff\
b728f3e4a7218b510da9ba201899f445";

pub const OPENSSL_SHA1_SIGNATURE_512: &str = "\
2c5a6aab8611175c9cdc52d7557f76b383ed46aaf7b3c06b0021e64f339ac891046eaf9f757dd5737f02be272c3f834c\
cdb14d977cc20bdf4dc300cacad1af74";

/// Test keys generated for this file with OpenSSL 3.0 (`openssl genpkey -algorithm RSA
/// -pkeyopt rsa_keygen_bits:2048`, `openssl genrsa -traditional 512`). Not used anywhere else.
pub const KEY_2048_PKCS8: &str = "\
-----BEGIN PRIVATE KEY-----\n\
MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQCr1VDwccYYbn3l\n\
CG3i2XnZORr280up3UaFJ5sNHdcMu4wA6nsonXKCqPiKhW01XO644E4wk5N2w+Rf\n\
Sl1usUeFyK+tCL9YYB7kcm3lca5IGuqyn706TRqc/bPPDU/PbmRHmiDSP+17U85j\n\
sa7Cmro/DMiz3bJGIMmZQS7X8Qp+U7h60r8JwqDo9rI3j0cQ5xMPQZcrvR6a29/d\n\
eIl1yJ6qVKvPmTzfa0Sp7eGYT700VuW32Jkiq/2aikzg3zXoZwURei394bsUQho8\n\
TLGEHtT0XPYPsI3Col5h/oF0yPi3TR5BbQZXPyUsbvhzx53IdMAcqbVGr+9MeDWW\n\
/svn6851AgMBAAECggEAD40igmRVoJPtZmtNIKT8i12I9HUf8atiTL5BIN6EvjUC\n\
DnoqM8qOGMeomMbLE7OJsmcwhGJyy+KeOkaNbq1yMugvCAq84IdwfE3j5spTUtjG\n\
yWw+ELb2M+OdIJ3MjZIo1rcbBdQ9zrXOvcSQs7GTrg2e43JqxkCE5k8ZKXd58uVE\n\
Mb4ajelYdYJSx4+WKIe6c6lBF7v+FBcs9tUJll6SPv9IkRYV85L3AV4JxjOxeB8q\n\
9wjQIT8B8zzzEshLx6pmJ/leJRnmToqDp4jFVE3SsyWUggXjB6V6kppIxydp4mKp\n\
x9z82bmMzn+xJknOQXcGWOLSBxiMTHT2ITA4IW5BOQKBgQDmNvZyV1kfaIA7rroU\n\
r13HpQHWXyk36AXO6zpi6O90s+StV3V5/ZDq8j8m5HLNTw//43FGLnxeFW3wYYBX\n\
kfYrqcOEImBS6DiPvana/0PkmghYJPl5efCUSeescFbsUTqBNeOg8rzOKRO5DvR2\n\
E9t4EXWOhiG89IQ8Pl/qTvvBCQKBgQC/FFwLQ4vK0UJYHF/agrBjfjPD0icUBmrw\n\
C9kdF1MAyKytCl0DU2npe+cBY+tH40OXmh+7611KPo6r0V8q/l+Xqk9tcaEMTlCk\n\
Avt/O6LtHffg2DxkJD6VKgSfixQjhS3aECd2/kO2K7OSF3MQxnHRjyw2o5zScy0w\n\
9rdGb+g5DQKBgDkGoGGOdYssLaebDokVL5vGqf/aLrGkjdvFtP7PSJGWBi1SHs2L\n\
HBy2ySHvMOjejs4KHwMNfM0pbcQ/wrTueRYzxTSz9zxSPcCNcMfIt56m8S40an/G\n\
zutMq1CxuzZqoJ1lJe+2cUJ4NmR+6dtd692AJaiaXT0bLK5nnQbDbeVRAoGBAJMA\n\
Y8uanIpdMRA+TBP8ZR018zccj0ndohmo09CIqCe7OvUpOuObIakp1E+Cgnjcw5x3\n\
SyC0cyHyPKq8ud2Gsx4oPVDykTa5bVqwnLGGvNJ1MsU9NkDIjYkOOV5Qjh7Bj8Pq\n\
l6H4/TjCKDUlazWlpdzVq+shNj3FtCeuNtOutlZlAoGAe9gtJGy8vfBmk98hpxtq\n\
ls4O2s+h+TTeVZSI8Uex375MiZkHX4y96zMxKEkN7I8/fJfH83g0kJMhQgwHQUx7\n\
yYbRdW6DLtG1dX9qbLR6uOSCBpspWA6QL1JO8Lv8cV/FNMzj2vNwglcZeCz/jMRn\n\
JbHjagEMZFCK5tx7INNC9qg=\n\
-----END PRIVATE KEY-----\n\
";

pub const KEY_512_PKCS1: &str = "\
-----BEGIN RSA PRIVATE KEY-----\n\
MIIBOwIBAAJBAOUGsOlEp9LbYV+QIzPlgUD6EWUx4/N/Zj5+qHnsgCGh9tMNNS4/\n\
mpGsdPdTdpzGHFgX0K6Id364zlNaZh9Hb3UCAwEAAQJBAMwqXdVlbdJr3W8qeCdQ\n\
Zhw9kPpMMnCkVspJcPlX2pWfNCg5WgMk3qv2j/lW/V89lpPVoehfZc9lVQR6E45u\n\
j6ECIQD4MU3fUiqooreGuPpSZxAAkVQnoylUiBLPhgGmmwEazQIhAOw7ChEKcTE4\n\
lE+6B7KQ3esUSE3T5XBlUv9FlpWdh/dJAiBpj37Rdv8RznNEZ7SAC7mwpB8o5KqV\n\
e3KUtShKli64GQIhANlIFKJH8IVNfV03xwy/ot8u8LJlTIxtJkIWR8Ol+gHBAiBW\n\
fg2N49qtiA4jXe7RSbfQ6M/Pa57AcL2HD5Q+B9srAg==\n\
-----END RSA PRIVATE KEY-----\n\
";
