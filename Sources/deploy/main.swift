print("deploy")
