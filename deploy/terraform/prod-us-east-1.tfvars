# Multi-region production, region us-east-1 (docs/multi-region.md): apply the
# us-east-1 stack first (it makes the global table), then eu-west-1's, each
# in its own state:
#   terraform workspace select -or-create prod-us-east-1
#   terraform apply -var-file=prod-us-east-1.tfvars
env    = "prod"
region = "us-east-1"

queue_name   = "order-queue"
dlq_name     = "order-queue-dlq"
table_name   = "Orders"
max_receives = 5

visibility_timeout_seconds = 30
point_in_time_recovery     = true
deletion_protection        = true

# This stack makes the global table, replicated to eu-west-1.
global_tables = ["eu-west-1"]

# One name for clients in every region, answered by latency among the
# healthy regions; this region's own host is what its health check probes.
dns_zone_id       = "Z0123456789EXAMPLE"
api_hostname      = "api.orderflow.example.com"
regional_hostname = "api.us-east-1.orderflow.example.com"
load_balancer = {
  dns_name = "orderflow-us-east-1-0123456789.us-east-1.elb.amazonaws.com"
  zone_id  = "Z35SXDOTRQ7X7K"
}

tags = {
  team        = "orders"
  cost-center = "commerce"
}
