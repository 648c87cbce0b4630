//! ServiceAccount tokens: issued by the TokenRequest subresource (`serviceaccounts/<name>/token`)
//! as JWTs signed with a key made when the sandbox starts (ES256), checked by TokenReview, and
//! accepted as bearer tokens (the request then acts as the ServiceAccount).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SystemRandom;
use ring::signature::{
    ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair, UnparsedPublicKey,
};
use serde_json::{Value, json};

/// The issuer and default audience of the tokens, as kube-apiserver's default.
pub const ISSUER: &str = "https://kubernetes.default.svc.cluster.local";

/// What a valid token says.
#[derive(Debug, Clone, PartialEq)]
pub struct Claims {
    pub namespace: String,
    pub service_account: String,
    pub uid: String,
    pub audiences: Vec<String>,
    pub expires: i64,
}

impl Claims {
    /// The user a request with this token acts as.
    pub fn user(&self) -> crate::rbac::UserInfo {
        crate::rbac::UserInfo {
            name: format!("system:serviceaccount:{}:{}", self.namespace, self.service_account),
            uid: self.uid.clone(),
            groups: vec![
                "system:serviceaccounts".into(),
                format!("system:serviceaccounts:{}", self.namespace),
                "system:authenticated".into(),
            ],
        }
    }
}

/// Signs and checks tokens.
pub struct Signer {
    key: Option<EcdsaKeyPair>,
    key_id: String,
}

impl Default for Signer {
    fn default() -> Self {
        let rng = SystemRandom::new();
        let key = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .ok()
            .and_then(|pkcs8| EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).ok());
        if key.is_none() {
            tracing::error!("cannot make a token signing key: token requests will fail");
        }
        let key_id = key
            .as_ref()
            .map(|k| {
                URL_SAFE_NO_PAD
                    .encode(&ring::digest::digest(&ring::digest::SHA256, k.public_key().as_ref()).as_ref()[..16])
            })
            .unwrap_or_default();
        Signer { key, key_id }
    }
}

impl Signer {
    /// A token for `service_account` (its uid) in `namespace`, valid `seconds` from `now`.
    pub fn issue(
        &self,
        namespace: &str,
        service_account: &str,
        uid: &str,
        audiences: &[String],
        now: i64,
        seconds: i64,
    ) -> Option<String> {
        let key = self.key.as_ref()?;
        let header = json!({"alg": "ES256", "kid": self.key_id, "typ": "JWT"});
        let claims = json!({
            "aud": audiences, "exp": now + seconds, "iat": now, "nbf": now, "iss": ISSUER,
            "sub": format!("system:serviceaccount:{namespace}:{service_account}"),
            "jti": uuid::Uuid::new_v4().to_string(),
            "kubernetes.io": {"namespace": namespace, "serviceaccount": {"name": service_account, "uid": uid}},
        });
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = key.sign(&SystemRandom::new(), signing_input.as_bytes()).ok()?;
        Some(format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature.as_ref())
        ))
    }

    /// The claims of a token this signer issued, if its signature holds and it has not
    /// expired at `now`; why not, otherwise.
    pub fn check(&self, token: &str, now: i64) -> Result<Claims, &'static str> {
        let key = self.key.as_ref().ok_or("no signing key")?;
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err("not a JWT");
        };
        let signature = URL_SAFE_NO_PAD.decode(signature).map_err(|_| "malformed signature")?;
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, key.public_key().as_ref())
            .verify(format!("{header}.{payload}").as_bytes(), &signature)
            .map_err(|_| "invalid bearer token")?;
        let claims: Value = URL_SAFE_NO_PAD
            .decode(payload)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or("malformed claims")?;
        let expires = claims["exp"].as_i64().ok_or("no expiry")?;
        if expires <= now {
            return Err("token has expired");
        }
        let text = |p: &str| {
            claims
                .pointer(p)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        Ok(Claims {
            namespace: text("/kubernetes.io/namespace"),
            service_account: text("/kubernetes.io/serviceaccount/name"),
            uid: text("/kubernetes.io/serviceaccount/uid"),
            audiences: claims["aud"]
                .as_array()
                .map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect())
                .unwrap_or_default(),
            expires,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_tokens_check_until_they_expire_and_forgeries_do_not() {
        let signer = Signer::default();
        let token = signer
            .issue("team", "bot", "u-1", &[ISSUER.to_string()], 1_000, 600)
            .expect("a token");
        let claims = signer.check(&token, 1_100).expect("valid");
        assert_eq!(claims.user().name, "system:serviceaccount:team:bot");
        assert_eq!(claims.expires, 1_600);
        assert_eq!(signer.check(&token, 1_600), Err("token has expired"));
        // Another sandbox's key, or a changed payload, does not verify.
        assert_eq!(Signer::default().check(&token, 1_100), Err("invalid bearer token"));
        let mut parts: Vec<&str> = token.split('.').collect();
        let forged = URL_SAFE_NO_PAD.encode(
            json!({"exp": 9_999_999_999i64, "kubernetes.io": {"namespace": "kube-system", "serviceaccount": {"name": "admin"}}})
                .to_string(),
        );
        parts[1] = &forged;
        assert_eq!(signer.check(&parts.join("."), 1_100), Err("invalid bearer token"));
        assert_eq!(signer.check("garbage", 1_100), Err("not a JWT"));
    }
}
