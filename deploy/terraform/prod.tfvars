# An example for a production account; copy and adjust. Credentials come
# from the standard chain (AWS_PROFILE, SSO, a CI role), never from here.
#   terraform apply -var-file=prod.tfvars
env    = "prod"
region = "eu-west-1"

queue_name   = "order-queue"
dlq_name     = "order-queue-dlq"
table_name   = "Orders"
max_receives = 5

visibility_timeout_seconds = 30
point_in_time_recovery     = true
deletion_protection        = true

# A customer-managed KMS key for SQS and DynamoDB (null: AWS-managed keys).
# kms_key_arn = "arn:aws:kms:eu-west-1:111122223333:key/..."

# Multi-region follow-up: replicate the table (DynamoDB global tables).
global_tables = []
# global_tables = ["us-east-1"]

tags = {
  team        = "orders"
  cost-center = "commerce"
}
