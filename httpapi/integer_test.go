package httpapi

import "testing"

func TestParseInteger(t *testing.T) {
	tests := []struct {
		lit         string
		bits        int
		want        int64
		ok, inRange bool
	}{
		{"16777217", 64, 16777217, true, true},
		{"16777217.0", 64, 16777217, true, true},
		{"1.6777217e7", 64, 16777217, true, true},
		{"1E2", 64, 100, true, true},
		{"1e+2", 64, 100, true, true},
		{"12.50e1", 64, 125, true, true},
		{"1500e-2", 64, 15, true, true},
		{"-42.000", 64, -42, true, true},
		{"0", 64, 0, true, true},
		{"-0.0", 64, 0, true, true},
		{"0e999999999999", 64, 0, true, true},
		{"9223372036854775807", 64, 9223372036854775807, true, true},
		{"-9223372036854775808", 64, -9223372036854775808, true, true},
		{"9.223372036854775807e18", 64, 9223372036854775807, true, true},
		{"2147483647", 32, 2147483647, true, true},

		{"9.99", 64, 0, false, false},
		{"1.25e1", 64, 0, false, false},
		{"1e-2", 64, 0, false, false},
		{"9999999999.0000001", 64, 0, false, false},
		{"1e-999999999999", 64, 0, false, false},

		{"9223372036854775808", 64, 0, true, false},
		{"-9223372036854775809", 64, 0, true, false},
		{"1e19", 64, 0, true, false},
		{"99999999999999999999.0", 64, 0, true, false},
		{"1e999999999", 64, 0, true, false},
		{"2147483648", 32, 0, true, false},
	}
	for _, tt := range tests {
		n, ok, inRange := parseInteger(tt.lit, tt.bits)
		if n != tt.want || ok != tt.ok || inRange != tt.inRange {
			t.Errorf("parseInteger(%q, %d) = %d, whole %v, in range %v; want %d, %v, %v", tt.lit, tt.bits, n, ok, inRange, tt.want, tt.ok, tt.inRange)
		}
	}
}
