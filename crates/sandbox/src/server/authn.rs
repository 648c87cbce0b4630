//! Authentication: bearer tokens of ServiceAccounts, TokenRequest, TokenReview and
//! SelfSubjectReview (`kubectl auth whoami`).

use super::*;

/// How long a requested token lives when the request does not say (kube-apiserver's default).
const DEFAULT_TOKEN_SECONDS: i64 = 3600;

fn unix_now() -> i64 {
    jiff::Timestamp::now().as_second()
}

fn time_of(seconds: i64) -> String {
    jiff::Timestamp::from_second(seconds)
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

impl ApiServer {
    /// Who makes a request: the ServiceAccount of a bearer token this sandbox issued, or the
    /// impersonation headers' user (the administrator without them). A bearer token that does
    /// not check is a 401, as kube-apiserver answers.
    pub(super) fn user_of(&self, headers: &HeaderMap) -> Result<UserInfo, ApiError> {
        let bearer = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty());
        match bearer {
            // kubeconfigs with a token of another kind (not a JWT) keep acting as before.
            Some(token) if token.matches('.').count() == 2 => match self.tokens.check(token, unix_now()) {
                Ok(claims) => Ok(claims.user()),
                Err(_) => Err(ApiError::new(401, "Unauthorized", "Unauthorized")),
            },
            _ => Ok(UserInfo::from_headers(headers)),
        }
    }

    /// The answer to a POST that authentication handles, if this is one.
    pub(super) fn authentication(
        &self,
        t: &Target,
        headers: &HeaderMap,
        body: &Bytes,
        user: &UserInfo,
    ) -> Result<Option<Response>, ApiError> {
        let group = t.rt.group.as_str();
        let plural = t.rt.plural.as_str();
        let answer = match (group, plural, t.subresource.as_deref(), &t.name) {
            ("", "serviceaccounts", Some("token"), Some(name)) => self.token_request(t, name, headers, body)?,
            ("authentication.k8s.io", "tokenreviews", None, None) => {
                let mut review = parse_body(headers, body)?;
                let token = str_field(&review, "/spec/token").unwrap_or_default().to_string();
                review["status"] = match self.tokens.check(&token, unix_now()) {
                    Ok(claims) => {
                        let who = claims.user();
                        json!({"authenticated": true, "audiences": claims.audiences,
                               "user": {"username": who.name, "uid": who.uid, "groups": who.groups}})
                    }
                    Err(why) => json!({"authenticated": false, "error": why}),
                };
                review
            }
            ("authentication.k8s.io", "selfsubjectreviews", None, None) => {
                let mut review = parse_body(headers, body).unwrap_or_else(|_| json!({}));
                review["apiVersion"] = json!("authentication.k8s.io/v1");
                review["kind"] = json!("SelfSubjectReview");
                review["metadata"]["creationTimestamp"] = Value::Null;
                review["status"] = json!({"userInfo": {"username": user.name, "uid": user.uid, "groups": user.groups}});
                review
            }
            _ => return Ok(None),
        };
        Ok(Some(json_response(201, &answer, &[])))
    }

    /// A TokenRequest for an existing ServiceAccount: a signed token bound to it.
    fn token_request(&self, t: &Target, name: &str, headers: &HeaderMap, body: &Bytes) -> Result<Value, ApiError> {
        let namespace = t.namespace.as_deref().unwrap_or_default();
        let account = self.get(&t.rt, Some(namespace), name)?;
        let mut request = parse_body(headers, body)?;
        let seconds = request
            .pointer("/spec/expirationSeconds")
            .and_then(Value::as_i64)
            .unwrap_or(DEFAULT_TOKEN_SECONDS);
        if seconds < 600 {
            return Err(ApiError::invalid(
                "authentication.k8s.io",
                "TokenRequest",
                name,
                format!(
                    "TokenRequest.authentication.k8s.io \"{name}\" is invalid: spec.expirationSeconds: Invalid value: {seconds}: may not specify a duration less than 10 minutes"
                ),
                vec![
                    json!({"reason": "FieldValueInvalid", "message": format!("Invalid value: {seconds}: may not specify a duration less than 10 minutes"), "field": "spec.expirationSeconds"}),
                ],
            ));
        }
        let audiences: Vec<String> = request
            .pointer("/spec/audiences")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect())
            .filter(|a: &Vec<String>| !a.is_empty())
            .unwrap_or_else(|| vec![crate::tokens::ISSUER.to_string()]);
        let now = unix_now();
        let uid = str_field(&account, "/metadata/uid").unwrap_or_default();
        let token = self
            .tokens
            .issue(namespace, name, uid, &audiences, now, seconds)
            .ok_or_else(|| ApiError::internal("the sandbox has no token signing key"))?;
        request["apiVersion"] = json!("authentication.k8s.io/v1");
        request["kind"] = json!("TokenRequest");
        request["metadata"] = json!({"name": name, "namespace": namespace, "creationTimestamp": time_of(now)});
        request["spec"]["audiences"] = json!(audiences);
        request["spec"]["expirationSeconds"] = json!(seconds);
        request["status"] = json!({"token": token, "expirationTimestamp": time_of(now + seconds)});
        Ok(request)
    }
}
