// Amounts: people type currency units ("12.50"); the API takes an integer
// in minor units (1250). Nothing here uses floating point arithmetic, so
// "0.29" is 29 cents, not 28.999….

/** minorDigits is the number of decimals of a currency (2 for USD, 0 for JPY). */
export function minorDigits(currency) {
  try {
    return new Intl.NumberFormat("en", { style: "currency", currency }).resolvedOptions().maximumFractionDigits;
  } catch {
    return 2;
  }
}

/**
 * parseAmount turns what a person typed into minor units.
 * It returns {value} on success or {error} with a sentence to show.
 * Accepted: "12", "12.5", "12.50", "1,234.50", "1 234.50", "€12.50",
 * "12.50 EUR" (spaces, currency symbols and the selected currency's code
 * are ignored). A comma followed by exactly one or two
 * digits at the end is read as the decimal separator ("12,50"). max, if
 * given, is the largest amount in minor units (the API's, see rules.js).
 */
export function parseAmount(text, currency, max) {
  const digits = minorDigits(currency);
  let s = String(text ?? "")
    .replace(/[\s\u00a0\u202f'_]/g, "")
    .replace(/^\p{Sc}+|\p{Sc}+$/gu, "");
  if (s.toUpperCase().endsWith(currency)) s = s.slice(0, -currency.length);
  if (s.toUpperCase().startsWith(currency)) s = s.slice(currency.length);
  if (s === "") return { error: "Enter an amount, for example 12.50." };
  if (s.startsWith("-")) return { error: "The amount must be more than zero." };
  if (/^\d+,\d{1,2}$/.test(s)) s = s.replace(",", "."); // 12,50 → 12.50
  else s = s.replace(/,(?=\d{3}(\D|$))/g, ""); // thousands separators
  const m = /^(\d*)(?:\.(\d*))?$/.exec(s);
  if (!m || (m[1] === "" && (m[2] ?? "") === "")) {
    return { error: "Enter the amount as a number, for example 12.50." };
  }
  const whole = m[1] || "0";
  const frac = m[2] ?? "";
  if (frac.length > digits) {
    return {
      error: digits === 0
        ? `${currency} amounts have no decimals; enter a whole number.`
        : `${currency} amounts have at most ${digits} decimals.`,
    };
  }
  const minorText = (whole + frac.padEnd(digits, "0")).replace(/^0+(?=\d)/, "");
  if (minorText.length > 16) return { error: "That amount is too large." };
  const value = Number(minorText);
  if (value <= 0) return { error: "The amount must be more than zero." };
  if (max != null && value > max) return { error: `The amount must be at most ${formatAmount(max, currency)}.` };
  return { value };
}

/** formatAmount shows minor units as money in the reader's locale. */
export function formatAmount(minor, currency) {
  const digits = minorDigits(currency);
  const major = Number(minor) / 10 ** digits;
  try {
    return new Intl.NumberFormat(undefined, { style: "currency", currency }).format(major);
  } catch {
    return `${major.toFixed(digits)} ${currency}`;
  }
}
