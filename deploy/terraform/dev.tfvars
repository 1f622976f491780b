# LocalStack on this machine (deploy/compose: `docker compose up -d localstack`):
#   terraform apply -var-file=dev.tfvars
env    = "dev"
region = "us-east-1"

aws_endpoint_url = "http://localhost:4566"
aws_access_key   = "test"
aws_secret_key   = "test"

skip_credentials_validation = true
skip_metadata_api_check     = true
skip_requesting_account_id  = true

point_in_time_recovery = true
deletion_protection    = false
