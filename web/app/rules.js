// The rules of an order that the page checks before it sends one: read
// from the API's OpenAPI document (the Item and OrderRequest schemas),
// which the server's own validation is checked against, so that the page
// keeps no copy of them. The server validates every order anyway; without
// the document the page leaves those checks to it.

let pending = null;

/** loadRules fetches the rules once and resolves to them, or to null if the document cannot be read (a later call tries again). */
export function loadRules() {
  pending ??= fetch("/openapi.json", { headers: { Accept: "application/json" } })
    .then((res) => (res.ok ? res.json() : Promise.reject(new Error(`openapi.json: ${res.status}`))))
    .then(rulesOf)
    .catch(() => {
      pending = null;
      return null;
    });
  return pending;
}

/** rulesOf reads the rules out of an OpenAPI document. */
export function rulesOf(doc) {
  const schemas = doc.components.schemas;
  const { sku, quantity } = schemas.Item.properties;
  return {
    sku: { pattern: new RegExp(sku.pattern), minLength: sku.minLength, maxLength: sku.maxLength },
    quantity: { min: quantity.minimum, max: quantity.maximum },
    amount: { max: schemas.OrderRequest.properties.amount.maximum },
  };
}

/** validSKU reports whether text is a SKU by rules. */
export function validSKU(text, rules) {
  const { pattern, minLength, maxLength } = rules.sku;
  return text.length >= minLength && text.length <= maxLength && pattern.test(text);
}

/** validQuantity reports whether text is a quantity by rules. */
export function validQuantity(text, rules) {
  const { min, max } = rules.quantity;
  return /^\d+$/.test(text) && Number(text) >= min && Number(text) <= max;
}
