variable "region" {
  description = "AWS region of the queue and the table (AWS_REGION of the app)."
  type        = string
  default     = "us-east-1"
}

variable "env" {
  description = "Deployment name, as the app's ENV setting; tags every resource."
  type        = string
  default     = "dev"
}

variable "queue_name" {
  description = "Name of the order queue (the app's ORDERFLOW_QUEUE_NAME)."
  type        = string
  default     = "order-queue"
}

variable "dlq_name" {
  description = "Name of the dead-letter queue (the app's ORDERFLOW_DLQ_NAME)."
  type        = string
  default     = "order-queue-dlq"
}

variable "table_name" {
  description = "Name of the DynamoDB table (the app's ORDERFLOW_TABLE_NAME, then DDB_TABLE)."
  type        = string
  default     = "Orders"
}

variable "max_receives" {
  description = "Receives before SQS moves a message to the DLQ: the queue's RedrivePolicy, which the processor reads (orderflow init sets it from ORDERFLOW_MAX_RECEIVES)."
  type        = number
  default     = 5

  validation {
    condition     = var.max_receives >= 1 && var.max_receives <= 1000
    error_message = "max_receives must be 1-1000."
  }
}

variable "visibility_timeout_seconds" {
  description = "Visibility timeout of the order queue (the app's ORDERFLOW_VISIBILITY_TIMEOUT; the processor extends it while an order is in work)."
  type        = number
  default     = 30
}

variable "kms_key_arn" {
  description = "Customer-managed KMS key for SQS and DynamoDB encryption; null uses SQS-managed SSE and the AWS-managed DynamoDB key."
  type        = string
  default     = null
}

variable "point_in_time_recovery" {
  description = "Continuous backups (PITR) of the table."
  type        = bool
  default     = true
}

variable "deletion_protection" {
  description = "Refuse to delete the table (turn on in production)."
  type        = bool
  default     = false
}

variable "global_tables" {
  description = "Regions to replicate the table to (DynamoDB global tables, version 2019.11.21); empty for a single-region table. Each replica keeps PITR on."
  type        = list(string)
  default     = []
}

variable "table_home_region" {
  description = "Multi-region: the region whose stack makes the global table (with this region in its global_tables); this stack then uses that table's replica here and makes no table. null: this stack makes the table."
  type        = string
  default     = null

  validation {
    condition     = var.table_home_region == null || var.table_home_region != var.region
    error_message = "table_home_region names another region's stack; leave it null in the stack that makes the table."
  }
}

variable "dns_zone_id" {
  description = "Multi-region: the Route 53 hosted zone of api_hostname; null makes no DNS record and no health check."
  type        = string
  default     = null
}

variable "api_hostname" {
  description = "Multi-region: the name clients use in every region (ORDERFLOW_PUBLIC_URL's host in every region), answered by latency from the healthy regions."
  type        = string
  default     = null
}

variable "regional_hostname" {
  description = "Multi-region: this region's own api host (its Ingress host), which the health check probes at /ready."
  type        = string
  default     = null
}

variable "load_balancer" {
  description = "Multi-region: this region's load balancer in front of the api (its DNS name and hosted zone id), the target of the latency record."
  type = object({
    dns_name = string
    zone_id  = string
  })
  default = null
}

variable "tags" {
  description = "Extra tags for every resource."
  type        = map(string)
  default     = {}
}

# Local emulators (LocalStack, moto_server): see dev.tfvars.

variable "aws_endpoint_url" {
  description = "Endpoint of an AWS emulator (the app's AWS_ENDPOINT_URL); null for AWS."
  type        = string
  default     = null
}

variable "aws_access_key" {
  description = "Static access key, for an emulator only; null uses the standard credential chain."
  type        = string
  default     = null
  sensitive   = true
}

variable "aws_secret_key" {
  description = "Static secret key, for an emulator only."
  type        = string
  default     = null
  sensitive   = true
}

variable "skip_credentials_validation" {
  description = "Skip the STS credentials check (emulators)."
  type        = bool
  default     = false
}

variable "skip_metadata_api_check" {
  description = "Skip the EC2 metadata API (emulators)."
  type        = bool
  default     = false
}

variable "skip_requesting_account_id" {
  description = "Do not ask STS/IAM for the account id (emulators)."
  type        = bool
  default     = false
}
