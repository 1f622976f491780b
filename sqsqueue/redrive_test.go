package sqsqueue

import "testing"

func TestRedriveTargetReadsTheDeadLetterQueueAndMaxReceives(t *testing.T) {
	const arn = "arn:aws:sqs:eu-west-1:123456789012:orders-dlq"
	tests := []struct {
		name    string
		policy  string
		wantARN string
		wantMax int
		wantErr bool
	}{
		{"a count written as a number (as SQS returns it)", `{"deadLetterTargetArn":"` + arn + `","maxReceiveCount":5}`, arn, 5, false},
		{"a count written as a string (as CreateQueues sets it)", `{"deadLetterTargetArn":"` + arn + `","maxReceiveCount":"7"}`, arn, 7, false},
		{"no policy is refused", ``, "", 0, true},
		{"a policy without a count is refused", `{"deadLetterTargetArn":"` + arn + `"}`, "", 0, true},
		{"a count of zero is refused", `{"deadLetterTargetArn":"` + arn + `","maxReceiveCount":0}`, "", 0, true},
		{"a policy without a target is refused", `{"maxReceiveCount":5}`, "", 0, true},
		{"a policy that is not JSON is refused", `maxReceiveCount=5`, "", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gotARN, gotMax, err := redriveTarget(tt.policy)
			if (err != nil) != tt.wantErr {
				t.Fatalf("redriveTarget(%q) error = %v, want error %v", tt.policy, err, tt.wantErr)
			}
			if gotARN != tt.wantARN || gotMax != tt.wantMax {
				t.Errorf("redriveTarget(%q) = %q, %d; want %q, %d", tt.policy, gotARN, gotMax, tt.wantARN, tt.wantMax)
			}
		})
	}
}
