package orderflow

import (
	"fmt"
	"strconv"
	"strings"
)

// minorDigitsExceptions are the ISO 4217 currencies whose minor unit is
// not 2 decimals (the standard's list, table A.1). Every other
// three-letter code counts as 2, like USD and EUR.
var minorDigitsExceptions = map[string]int{
	"BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "ISK": 0, "JPY": 0, "KMF": 0,
	"KRW": 0, "PYG": 0, "RWF": 0, "UGX": 0, "UYI": 0, "VND": 0, "VUV": 0,
	"XAF": 0, "XOF": 0, "XPF": 0,
	"BHD": 3, "IQD": 3, "JOD": 3, "KWD": 3, "LYD": 3, "OMR": 3, "TND": 3,
	"CLF": 4, "UYW": 4,
}

// MinorDigits is the number of decimals of currency's minor unit per
// ISO 4217: 2 for USD and EUR, 0 for JPY, 3 for KWD. An Order's Amount
// counts in these units (1250 USD is 12.50 dollars).
func MinorDigits(currency string) int {
	if d, ok := minorDigitsExceptions[currency]; ok {
		return d
	}
	return 2
}

// ParseAmount reads an amount in major units ("12.50", "12", "1250" for
// JPY) and returns it in minor units of currency. It is exact (no float):
// more decimals than the currency has, a sign, an exponent or anything
// but digits and one '.' is an *Error with code EInvalid on "amount".
func ParseAmount(s, currency string) (int64, error) {
	digits := MinorDigits(currency)
	whole, frac, hasDot := strings.Cut(s, ".")
	if whole == "" && frac == "" || !allDigits(whole) || !allDigits(frac) || hasDot && frac == "" {
		return 0, Invalid("amount", "amount must be a decimal number in major units such as 12.50, got %q", s)
	}
	if len(frac) > digits {
		if digits == 0 {
			return 0, Invalid("amount", "%s amounts have no decimals, got %q", currency, s)
		}
		return 0, Invalid("amount", "%s amounts have at most %d decimals, got %q", currency, digits, s)
	}
	minor := strings.TrimLeft(whole+frac+strings.Repeat("0", digits-len(frac)), "0")
	if minor == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(minor, 10, 64)
	if err != nil || n > MaxAmount {
		return 0, Invalid("amount", "amount %q is too large", s)
	}
	return n, nil
}

// FormatAmount renders minor units of currency in major units with the
// currency's decimals: FormatAmount(1250, "EUR") is "12.50 EUR".
func FormatAmount(minor int64, currency string) string {
	digits := MinorDigits(currency)
	sign := ""
	if minor < 0 {
		sign, minor = "-", -minor
	}
	s := strconv.FormatInt(minor, 10)
	if digits > 0 {
		if len(s) <= digits {
			s = strings.Repeat("0", digits-len(s)+1) + s
		}
		s = s[:len(s)-digits] + "." + s[len(s)-digits:]
	}
	return fmt.Sprintf("%s%s %s", sign, s, currency)
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
