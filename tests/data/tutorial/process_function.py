import time
from multiprocessing import Process  #Process是个类


def work(name):
    print('%s is running' %name)
    time.sleep(0.2)
    print('%s is done ' %name)

if __name__=='__main__':
    p1=Process(target=work,args=('alex',))
    #p1 = Process(target=work, kwargs={'name':'alex'})
    p1.start() #运行进程 开始执行任务
    print('主')
