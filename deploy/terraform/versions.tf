terraform {
  required_version = ">= 1.5.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 6.3, < 7.0" # 6.3: replica.consistency_mode
    }
  }
}
