package orderflow

import "testing"

func TestParseAmount(t *testing.T) {
	for _, tt := range []struct {
		name, in, currency string
		want               int64
		ok                 bool
	}{
		{"two decimals in cents", "12.50", "EUR", 1250, true},
		{"one decimal is padded", "12.5", "USD", 1250, true},
		{"a whole number of dollars", "12", "USD", 1200, true},
		{"leading zeros are ignored", "0.05", "USD", 5, true},
		{"a leading dot is read as zero", ".75", "USD", 75, true},
		{"yen have no decimals", "1250", "JPY", 1250, true},
		{"dinars have three", "1.234", "KWD", 1234, true},
		{"yen with decimals are refused", "12.5", "JPY", 0, false},
		{"three decimals of a dollar are refused", "12.505", "USD", 0, false},
		{"a trailing dot is refused", "12.", "USD", 0, false},
		{"a sign is refused", "-1", "USD", 0, false},
		{"an exponent is refused", "1e3", "USD", 0, false},
		{"a comma is refused", "12,50", "EUR", 0, false},
		{"an empty amount is refused", "", "USD", 0, false},
		{"more than the limit is refused", "100000000.01", "USD", 0, false},
		{"more than int64 is refused", "99999999999999999999", "USD", 0, false},
		{"the limit itself is read", "100000000.00", "USD", MaxAmount, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseAmount(tt.in, tt.currency)
			if tt.ok && (err != nil || got != tt.want) {
				t.Fatalf("ParseAmount(%q, %s) = %d, %v; want %d", tt.in, tt.currency, got, err, tt.want)
			}
			if !tt.ok && (err == nil || ErrorCode(err) != EInvalid || ErrorField(err) != "amount") {
				t.Fatalf("ParseAmount(%q, %s) = %d, %v; want an invalid amount", tt.in, tt.currency, got, err)
			}
		})
	}
}

func TestFormatAmount(t *testing.T) {
	for _, tt := range []struct {
		minor    int64
		currency string
		want     string
	}{
		{1250, "EUR", "12.50 EUR"},
		{5, "USD", "0.05 USD"},
		{100, "USD", "1.00 USD"},
		{1250, "JPY", "1250 JPY"},
		{1234, "KWD", "1.234 KWD"},
		{-5, "USD", "-0.05 USD"},
	} {
		if got := FormatAmount(tt.minor, tt.currency); got != tt.want {
			t.Errorf("FormatAmount(%d, %s) = %q, want %q", tt.minor, tt.currency, got, tt.want)
		}
	}
}
