package orderflow

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash/fnv"
	"time"
)

// NewOrderID returns a new 32-hex-character id whose first 12 characters
// are the creation time in milliseconds, so ids sort by creation time
// (like UUIDv7) and make stable paging cursors. The rest is 80 random bits.
func NewOrderID(now time.Time) OrderID { return NewOrderIDIn(now, "") }

// NewOrderIDIn returns a new id of an order accepted in region (the AWS
// mode's AWS_REGION; "" for none, as NewOrderID). It has NewOrderID's
// shape, with characters 12 to 15 the region's tag (RegionTag) in place
// of 16 of the random bits, so that any region can tell from an id alone
// where the order was accepted: its home region, unless a processor of
// another region took it over (Order.Region then says so).
func NewOrderIDIn(now time.Time, region string) OrderID {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(now.UnixMilli())<<16)
	_, _ = rand.Read(b[6:]) // crypto/rand.Read never fails (Go 1.24+)
	if region != "" {
		binary.BigEndian.PutUint16(b[6:8], regionTag(region))
	}
	return OrderID(hex.EncodeToString(b[:]))
}

// RegionTag is the 4 hex characters that ids of orders accepted in region
// carry (NewOrderIDIn): the first 16 bits of its FNV-1a hash. The AWS
// regions' tags differ from one another (TestRegionTagsOfTheAWSRegionsDiffer).
func RegionTag(region string) string { return fmt.Sprintf("%04x", regionTag(region)) }

func regionTag(region string) uint16 {
	h := fnv.New32a()
	h.Write([]byte(region))
	return uint16(h.Sum32() >> 16)
}

// AcceptedIn reports whether id carries region's tag: the order was
// accepted there (or, for ids made without a region, by chance: 1 in
// 65,536).
func (id OrderID) AcceptedIn(region string) bool {
	return id.Valid() && region != "" && string(id[12:16]) == RegionTag(region)
}

// Valid reports whether id has the shape NewOrderID produces: 32
// lower-case hex digits. (A loop: the processor checks every message's id,
// and a regexp took 0.4 µs.)
func (id OrderID) Valid() bool {
	if len(id) != 32 {
		return false
	}
	for i := range len(id) {
		if c := id[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
