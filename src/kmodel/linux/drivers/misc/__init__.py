"""drivers/misc/"""
