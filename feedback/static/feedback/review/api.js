// Talking to the review API: JSON in and out, the CSRF token, and "offline" for anything that did
// not reach the server or that the server could not answer (5xx), so that the outbox retries it.
export class Offline extends Error {}

export function csrfToken(doc = document) {
  const input = doc.querySelector("[name=csrfmiddlewaretoken]");
  return input ? input.value : "";
}

export async function api(method, url, body) {
  let response;
  try {
    response = await fetch(url, {
      method,
      credentials: "same-origin",
      headers: {"Content-Type": "application/json", "Accept": "application/json", "X-CSRFToken": csrfToken()},
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (error) {
    throw new Offline(String(error));
  }
  if (response.status >= 500) throw new Offline("server error " + response.status);
  let data = null;
  if (response.status !== 204) {
    try { data = await response.json(); } catch (error) { data = null; }
  }
  return {status: response.status, data};
}

// A 400's body: each field with its messages ("critique: At most 20,000 characters (got 20,001).").
// Read from the body's "errors" when it has them ({detail, code, errors}), else from the body itself
// ({field: [messages]}); a refusal that names no field is its "detail".
export function fieldErrors(data) {
  const nested = data && typeof data.errors === "object" && data.errors !== null && !Array.isArray(data.errors);
  const errors = nested ? data.errors : data;
  const text = Object.entries(errors || {})
    .map(([field, messages]) => `${field}: ${[].concat(messages).join(" ")}`).join(" ");
  return text || (data && data.detail) || "";
}
